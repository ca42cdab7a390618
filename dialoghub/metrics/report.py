"""All summary metrics of one system (or of the human leave-one-out ceiling) in one report.

Units: ROUGE F-measures, BLEU, chrF and semantic similarity (cosine) are in percent (0-100), both as headline
estimates and per sample; toxicity is a probability in [0, 1]; lengths are in words and characters.
Headline metrics carry a percentile bootstrap interval over documents; one seeded index matrix is shared by all of
them, and BLEU/chrF are recomputed at corpus level on each resample.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from dialoghub.metrics.bleu_chrf import CORPUS_METRICS, CorpusStatistics
from dialoghub.metrics.bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    Estimate,
    bootstrap_indices,
    mean_estimate,
    statistic_estimate,
)
from dialoghub.metrics.inputs import check_predictions_and_references
from dialoghub.metrics.lengths import length_statistics
from dialoghub.metrics.rouge import (
    ROUGE_TYPES,
    first_reference_rouge_per_sample,
    leave_one_out_scores,
    rouge_per_sample,
)
from dialoghub.metrics.semantic import SemanticSimilarity
from dialoghub.metrics.toxicity import TOXIC_THRESHOLD, ToxicityScorer, summarize_toxicity

LEAVE_ONE_OUT = "leave-one-out"
# Metric-name prefix of the single-reference ROUGE scores (first reference, `evaluate`'s defaults)
FIRST_REFERENCE = "ref1_"
FIRST_REFERENCE_PROTOCOL = "first-reference"


def metric_protocol(metric: str, protocol: str) -> str:
    """The reference protocol a metric of a report under `protocol` was computed with."""
    return FIRST_REFERENCE_PROTOCOL if metric.startswith(FIRST_REFERENCE) else protocol


@dataclass(frozen=True)
class MetricsReport:
    protocol: str
    n_samples: int
    n_bootstrap: int
    seed: int
    confidence: float
    metrics: dict[str, Estimate]
    """Headline metrics with bootstrap intervals."""
    statistics: dict[str, float | int | str]
    """Everything else: lengths, toxicity, sacrebleu signatures, the models used."""
    per_sample: dict[str, list[float]]

    def to_dict(self) -> dict:
        """JSON-ready (nested dicts, lists, floats and strings)."""
        return asdict(self)


def _percent(values: Iterable[float]) -> list[float]:
    return [100 * value for value in values]


def score_summaries(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    protocol: str = "jackknife",
    semantic_similarity: SemanticSimilarity | None = None,
    toxicity: ToxicityScorer | None = None,
    n_bootstrap: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> MetricsReport:
    """ROUGE under `protocol` and against the first reference alone (`ref1_*`), corpus BLEU and chrF, semantic
    similarity (if a model is given), length statistics and toxicity of the predictions (if a scorer is given)."""
    check_predictions_and_references(predictions, references)
    indices = bootstrap_indices(len(predictions), n_bootstrap, seed)

    per_sample = {
        name: _percent(values) for name, values in rouge_per_sample(predictions, references, protocol).items()
    }
    for name, values in first_reference_rouge_per_sample(predictions, references).items():
        per_sample[f"{FIRST_REFERENCE}{name}"] = _percent(values)
    statistics: dict[str, float | int | str] = {}
    if semantic_similarity is not None:
        per_sample["semantic_similarity"] = _percent(semantic_similarity(predictions, references))
        statistics["semantic_similarity_model"] = semantic_similarity.name
    metrics = {name: mean_estimate(values, indices, confidence) for name, values in per_sample.items()}

    for name in CORPUS_METRICS:
        corpus = CorpusStatistics(name, predictions, references)
        metrics[name] = statistic_estimate(corpus.score, len(predictions), indices, confidence)
        statistics[f"{name}_signature"] = corpus.signature

    statistics.update(length_statistics(predictions, references))
    if toxicity is not None:
        per_sample["toxicity"] = toxicity(predictions)
        statistics["toxicity_scorer"] = toxicity.name
        statistics.update(summarize_toxicity(per_sample["toxicity"]))
        # Also as metrics with intervals, in percent like the others: the leaderboard's toxicity columns
        metrics["mean_toxicity"] = mean_estimate(_percent(per_sample["toxicity"]), indices, confidence)
        flagged = [100.0 * (score >= TOXIC_THRESHOLD) for score in per_sample["toxicity"]]
        metrics["flagged_fraction"] = mean_estimate(flagged, indices, confidence)
    return MetricsReport(protocol, len(predictions), n_bootstrap, seed, confidence, metrics, statistics, per_sample)


def human_ceiling(
    rows: Iterable[Mapping],
    *,
    semantic_similarity: SemanticSimilarity | None = None,
    n_bootstrap: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> MetricsReport:
    """The human leave-one-out row: in each row with k >= 2 `summaries`, every summary is scored against the k-1
    others (ROUGE, and semantic similarity if a model is given) and the k scores are averaged; rows with a single
    summary cannot be scored this way and are counted in `statistics["single_summary_rows_skipped"]`.

    BLEU and chrF are left out: systems get them against all k references, so a k-1 reference human score would not
    be comparable."""
    usable, skipped = [], 0
    for index, row in enumerate(rows):
        summaries = row.get("summaries")
        row_id = row.get("conversation_id", f"row {index}")
        if isinstance(summaries, str) or not summaries or not all(isinstance(text, str) for text in summaries):
            raise ValueError(f"{row_id}: 'summaries' must be a non-empty list of strings, got {summaries!r}")
        if len(summaries) == 1:
            skipped += 1
        else:
            usable.append(list(summaries))
    if not usable:
        raise ValueError("no row has 2 or more summaries; the leave-one-out ceiling needs them")

    per_row = [leave_one_out_scores(summaries) for summaries in usable]
    per_sample = {rouge_type: _percent(scores[rouge_type] for scores in per_row) for rouge_type in ROUGE_TYPES}
    statistics: dict[str, float | int | str] = {"single_summary_rows_skipped": skipped}
    if semantic_similarity is not None:
        per_sample["semantic_similarity"] = _percent(semantic_similarity.leave_one_out(usable))
        statistics["semantic_similarity_model"] = semantic_similarity.name
    indices = bootstrap_indices(len(usable), n_bootstrap, seed)
    metrics = {name: mean_estimate(values, indices, confidence) for name, values in per_sample.items()}
    return MetricsReport(LEAVE_ONE_OUT, len(usable), n_bootstrap, seed, confidence, metrics, statistics, per_sample)
