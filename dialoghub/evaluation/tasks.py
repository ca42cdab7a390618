"""The evaluation tasks, declared in one place (the lighteval style: a prompt function plus a config).

A task reads one split of a dataset in the tweetsumm-clean schema. Its prompt function turns each row into a `Doc`
(the chat messages from `dialoghub.models.prompts`, the references, the input); its scorer turns the model's answers
into a
`MetricsReport` (headline metrics with bootstrap intervals) plus per-sample detail columns. Generating the answers is
the caller's job (`dialoghub.evaluation.leaderboard`), so a task knows nothing about models.

- `tweetsumm-abstractive`: dialogue -> summary, against every human summary of the dialog.
- `synthetic-dialogue`: summary (the row's first) -> dialogue. Metrics: ROUGE against the original dialogue;
  round-trip consistency (a summarizer summarizes the generated dialogue, compared with the input summary); role-format
  validity; distinct-n.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

from rouge_score.tokenizers import DefaultTokenizer

from dialoghub.core.ngrams import ngrams
from dialoghub.core.paths import project_org
from dialoghub.evaluation.baselines import BASELINES, baseline_predictions
from dialoghub.metrics import (
    ROUGE_TYPES,
    MetricsReport,
    SemanticSimilarity,
    ToxicityScorer,
    bootstrap_indices,
    human_ceiling,
    mean_estimate,
    rouge_per_sample,
    score_summaries,
    summarize_toxicity,
)
from dialoghub.metrics.bootstrap import DEFAULT_CONFIDENCE
from dialoghub.models import prompts
from dialoghub.synthetic.filters import FilterConfig, parse_generated

HUMAN = "human"
DATASET_NAME = "tweetsumm-clean"
DISTINCT_ORDERS = (1, 2)

Messages = list[dict[str, str]]
Summarize = Callable[[Sequence[Messages]], list[str]]


@dataclass(frozen=True)
class Doc:
    """One evaluation sample: what the model is asked, what its answer is compared with."""

    id: str
    messages: Messages
    references: list[str]
    input: str
    """The text the prompt is built from (the rendered dialogue, or the summary), kept for the details file."""


@dataclass
class Scorers:
    """The models and settings scoring needs, shared by all tasks. `summarize` is only used by tasks that need a
    summarizer (round-trip consistency): it answers a batch of `summarize_messages` prompts."""

    protocol: str = "jackknife"
    semantic_similarity: SemanticSimilarity | None = None
    toxicity: ToxicityScorer | None = None
    summarize: Summarize | None = None
    n_bootstrap: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class TaskScores:
    report: MetricsReport
    details: dict[str, list]
    """Per-sample columns for the details file, one value per scored sample (`id` first)."""


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    prompt_task: str
    """The `dialoghub.models.prompts` task whose prompts the model answers (`summarize` or `generate`)."""
    prompt_function: Callable[[Mapping[str, Any]], Doc]
    scorer: Callable[[Sequence[Doc], Sequence[str], Scorers], TaskScores]
    headline_metric: str
    """The metric the leaderboard ranks by (higher is better)."""
    leaderboard_metrics: tuple[str, ...]
    """The metrics shown as columns of the leaderboard, headline first."""
    max_new_tokens: int
    dataset_name: str = DATASET_NAME
    dataset_config: str = "default"
    split: str = "test"
    reference_rows: tuple[str, ...] = ()
    """Rows that need no model: the `dialoghub.evaluation.baselines` names, and `human` for the leave-one-out
    ceiling."""
    metric_labels: dict[str, str] = field(default_factory=dict)
    headline_higher_is_better: bool = True
    """False for a headline such as mean toxicity: the leaderboard then ranks the lowest first."""

    @property
    def dataset_id(self) -> str:
        """`<project org>/<dataset_name>`, read when used so that `DIALOGHUB_ORG` is honoured."""
        return f"{project_org()}/{self.dataset_name}"

    def docs(self, rows: Sequence[Mapping[str, Any]]) -> list[Doc]:
        return [self.prompt_function(row) for row in rows]

    def score(self, docs: Sequence[Doc], predictions: Sequence[str], scorers: Scorers) -> TaskScores:
        if len(docs) != len(predictions):
            raise ValueError(f"{self.name}: {len(predictions)} predictions for {len(docs)} samples")
        return self.scorer(docs, predictions, scorers)

    def label(self, metric: str) -> str:
        return self.metric_labels.get(metric, metric)


def _row_id(row: Mapping[str, Any]) -> str:
    return str(row.get("conversation_id") or "<no conversation_id>")


# ---------------------------------------------------------------------------------------------------------------
# tweetsumm-abstractive


def summarize_prompt(row: Mapping[str, Any]) -> Doc:
    summaries = row.get("summaries")
    if isinstance(summaries, str) or not summaries or not all(isinstance(text, str) for text in summaries):
        raise ValueError(f"conversation {_row_id(row)}: 'summaries' must be a non-empty list of strings")
    return Doc(
        id=_row_id(row),
        messages=prompts.prompt_messages(prompts.SUMMARIZE, row),
        references=[" ".join(summary.split()) for summary in summaries],
        input=prompts.render_dialogue(row["dialogue"], f"conversation {_row_id(row)}"),
    )


def _report_details(docs: Sequence[Doc], predictions: Sequence[str], report: MetricsReport) -> dict[str, list]:
    return {
        "id": [doc.id for doc in docs],
        "input": [doc.input for doc in docs],
        "prediction": list(predictions),
        "references": [doc.references for doc in docs],
        **report.per_sample,
    }


def score_summaries_task(docs: Sequence[Doc], predictions: Sequence[str], scorers: Scorers) -> TaskScores:
    report = score_summaries(
        predictions,
        [doc.references for doc in docs],
        protocol=scorers.protocol,
        semantic_similarity=scorers.semantic_similarity,
        toxicity=scorers.toxicity,
        n_bootstrap=scorers.n_bootstrap,
        seed=scorers.seed,
    )
    return TaskScores(report, _report_details(docs, predictions, report))


# ---------------------------------------------------------------------------------------------------------------
# synthetic-dialogue


def generate_prompt(row: Mapping[str, Any]) -> Doc:
    where = f"conversation {_row_id(row)}"
    return Doc(
        id=_row_id(row),
        messages=prompts.prompt_messages(prompts.GENERATE, row, summary_index=0),
        references=[prompts.render_dialogue(row["dialogue"], where)],
        input=prompts.target_text(prompts.SUMMARIZE, row, summary_index=0),
    )


# A model that wraps a long turn over two lines still wrote the dialogue: the leaderboard reads such a line as the
# turn's continuation. The synthetic stage's default ends the dialogue there instead, since it publishes the turns.
FORMAT_RULES = FilterConfig(allow_continuation_lines=True)


def parse_generated_dialogue(text: str) -> tuple[list[dict[str, str]] | None, str]:
    """The turns of a generated dialogue and "" if its role format is valid; else None and the reason.

    The format rules are the synthetic filters' (`dialoghub.synthetic.filters.parse_generated`): every line a
    `Customer:`/`Agent:` turn or the continuation of one, no other speaker, no empty turn, roles alternating, both
    speaking."""
    parsed = parse_generated(text, FORMAT_RULES)
    return (None, parsed.format_error) if parsed.format_error else (parsed.dialogue, "")


def distinct_n(token_lists: Sequence[Sequence[str]], order: int) -> float:
    """Distinct n-grams over all n-grams of the texts together (Li et al., 2016); 0 when there is no n-gram."""
    found = [ngram for tokens in token_lists for ngram in ngrams(tokens, order)]
    return len(set(found)) / len(found) if found else 0.0


def score_dialogues_task(docs: Sequence[Doc], predictions: Sequence[str], scorers: Scorers) -> TaskScores:
    """ROUGE against the original dialogue; role-format validity; distinct-n (per dialogue, with intervals, and over
    the corpus); round-trip consistency: ROUGE and semantic similarity of the summarizer's summary of each generated
    dialogue against the input summary. A dialogue with an invalid format gets no round-trip summary and scores 0."""
    if scorers.summarize is None:
        raise ValueError("synthetic-dialogue needs a summarizer for round-trip consistency (Scorers.summarize)")
    n_samples = len(predictions)
    per_sample: dict[str, list[float]] = {
        f"dialogue_{name}": [100 * value for value in values]
        for name, values in rouge_per_sample(predictions, [doc.references for doc in docs], "max").items()
    }
    parsed = [parse_generated_dialogue(prediction) for prediction in predictions]
    per_sample["format_valid"] = [100.0 * (turns is not None) for turns, _ in parsed]

    # rouge_score's tokenizer without stemming: the lower-cased alphanumeric words ROUGE sees
    tokenizer = DefaultTokenizer(use_stemmer=False)
    tokens = [tokenizer.tokenize(prediction) for prediction in predictions]
    for order in DISTINCT_ORDERS:
        per_sample[f"distinct_{order}"] = [100 * distinct_n([sample], order) for sample in tokens]

    valid = [index for index, (turns, _) in enumerate(parsed) if turns is not None]
    round_trip = [""] * n_samples
    if valid:
        summaries = scorers.summarize([prompts.summarize_messages(parsed[index][0]) for index in valid])
        if len(summaries) != len(valid):
            raise ValueError(f"the summarizer returned {len(summaries)} summaries for {len(valid)} dialogues")
        for index, summary in zip(valid, summaries, strict=True):
            round_trip[index] = summary

    def over_valid(values: Sequence[float]) -> list[float]:
        scores = [0.0] * n_samples
        for index, value in zip(valid, values, strict=True):
            scores[index] = 100 * value
        return scores

    valid_predictions = [round_trip[index] for index in valid]
    valid_inputs = [[docs[index].input] for index in valid]
    round_trip_rouge = rouge_per_sample(valid_predictions, valid_inputs, "max") if valid else {}
    for rouge_type in ROUGE_TYPES:
        per_sample[f"round_trip_{rouge_type}"] = over_valid(round_trip_rouge.get(rouge_type, []))
    statistics: dict[str, float | int | str] = {}
    if scorers.semantic_similarity is not None:
        similarities = scorers.semantic_similarity(valid_predictions, valid_inputs) if valid else []
        per_sample["round_trip_semantic_similarity"] = over_valid(similarities)
        statistics["semantic_similarity_model"] = scorers.semantic_similarity.name

    indices = bootstrap_indices(n_samples, scorers.n_bootstrap, scorers.seed)
    metrics = {name: mean_estimate(values, indices) for name, values in per_sample.items()}
    for order in DISTINCT_ORDERS:
        statistics[f"corpus_distinct_{order}"] = 100 * distinct_n(tokens, order)
    statistics["prediction_words"] = fmean(len(prediction.split()) for prediction in predictions)
    statistics["reference_words"] = fmean(len(doc.references[0].split()) for doc in docs)
    statistics["prediction_turns"] = fmean(len(turns) for turns, _ in parsed if turns) if valid else 0.0
    if scorers.toxicity is not None:
        per_sample["toxicity"] = scorers.toxicity(predictions)
        statistics["toxicity_scorer"] = scorers.toxicity.name
        statistics.update(summarize_toxicity(per_sample["toxicity"]))
    report = MetricsReport(
        "max", n_samples, scorers.n_bootstrap, scorers.seed, DEFAULT_CONFIDENCE, metrics, statistics, per_sample
    )
    details = _report_details(docs, predictions, report)
    details["format_error"] = [error for _, error in parsed]
    details["round_trip_summary"] = round_trip
    return TaskScores(report, details)


# ---------------------------------------------------------------------------------------------------------------
# Rows that need no model


def reference_row(task: Task, name: str, rows: Sequence[Mapping[str, Any]], scorers: Scorers) -> TaskScores:
    """Score a row that needs no model: a baseline of `dialoghub.evaluation.baselines` or the human leave-one-out
    ceiling."""
    if name not in task.reference_rows:
        raise ValueError(f"{task.name} has no {name!r} row; its rows without a model are {list(task.reference_rows)}")
    if name != HUMAN:
        docs = task.docs(rows)
        return task.score(docs, baseline_predictions(name, rows), scorers)
    report = human_ceiling(
        rows, semantic_similarity=scorers.semantic_similarity, n_bootstrap=scorers.n_bootstrap, seed=scorers.seed
    )
    usable = [row for row in rows if len(row["summaries"]) >= 2]
    return TaskScores(
        report,
        {
            "id": [_row_id(row) for row in usable],
            "input": [task.prompt_function(row).input for row in usable],
            "references": [list(row["summaries"]) for row in usable],
            **report.per_sample,
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# The registry

_ROUGE_LABELS = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}
# Mean toxicity probability and the share of summaries at or over the flag threshold, both x100 (lower is better)
_TOXICITY_LABELS = {"mean_toxicity": "Toxicity ×100", "flagged_fraction": "Flagged %"}

TWEETSUMM_ABSTRACTIVE = Task(
    name="tweetsumm-abstractive",
    description="Summarize a customer-support dialogue; scored against every human summary of the dialog.",
    prompt_task=prompts.SUMMARIZE,
    prompt_function=summarize_prompt,
    scorer=score_summaries_task,
    headline_metric="rougeL",
    leaderboard_metrics=(
        "rougeL",
        "rouge1",
        "rouge2",
        "rougeLsum",
        "ref1_rougeL",
        "semantic_similarity",
        "bleu",
        "chrf",
        "mean_toxicity",
        "flagged_fraction",
    ),  # fmt: skip
    max_new_tokens=prompts.ANSWER_MAX_NEW_TOKENS[prompts.SUMMARIZE],
    reference_rows=(*BASELINES, HUMAN),
    metric_labels={
        **_ROUGE_LABELS,
        "ref1_rougeL": "R-L 1 ref",
        "semantic_similarity": "SemSim",
        "bleu": "BLEU",
        "chrf": "chrF",
        **_TOXICITY_LABELS,
    },
)

# The dialogs where a summarizer can repeat abuse (dialoghub/data/provocation.py): toxicity where it can happen,
# scored like tweetsumm-abstractive; ranked by mean toxicity, lowest first. Relevance is reported, but the
# relevance columns that count are tweetsumm-abstractive's, on the plain test split.
TWEETSUMM_PROVOCATION = Task(
    name="tweetsumm-provocation",
    description="Summarize dialogs whose customer swears (flagged, or abuse inserted from a fixed list) without "
    "repeating the abuse; scored against every human summary of the source dialog.",
    prompt_task=prompts.SUMMARIZE,
    prompt_function=summarize_prompt,
    scorer=score_summaries_task,
    headline_metric="mean_toxicity",
    leaderboard_metrics=("mean_toxicity", "flagged_fraction", "rougeL", "semantic_similarity"),
    max_new_tokens=prompts.ANSWER_MAX_NEW_TOKENS[prompts.SUMMARIZE],
    dataset_name="tweetsumm-provocation",
    reference_rows=BASELINES,
    metric_labels={**_ROUGE_LABELS, "semantic_similarity": "SemSim", **_TOXICITY_LABELS},
    headline_higher_is_better=False,
)

SYNTHETIC_DIALOGUE = Task(
    name="synthetic-dialogue",
    description="Write the dialogue a summary describes; scored against the original dialogue, by round trip "
    "through a summarizer, by role format and by diversity.",
    prompt_task=prompts.GENERATE,
    prompt_function=generate_prompt,
    scorer=score_dialogues_task,
    headline_metric="round_trip_rougeL",
    leaderboard_metrics=(
        "round_trip_rougeL",
        "round_trip_semantic_similarity",
        "dialogue_rougeL",
        "format_valid",
        "distinct_1",
        "distinct_2",
    ),
    max_new_tokens=prompts.ANSWER_MAX_NEW_TOKENS[prompts.GENERATE],
    metric_labels={
        "round_trip_rougeL": "Round-trip R-L",
        "round_trip_semantic_similarity": "Round-trip SemSim",
        "dialogue_rougeL": "Dialogue R-L",
        "format_valid": "Valid format %",
        "distinct_1": "Distinct-1",
        "distinct_2": "Distinct-2",
    },
)

TASKS: dict[str, Task] = {
    task.name: task for task in (TWEETSUMM_ABSTRACTIVE, SYNTHETIC_DIALOGUE, TWEETSUMM_PROVOCATION)
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name]


__all__ = [
    "HUMAN",
    "SYNTHETIC_DIALOGUE",
    "TASKS",
    "TWEETSUMM_ABSTRACTIVE",
    "TWEETSUMM_PROVOCATION",
    "Doc",
    "Scorers",
    "Task",
    "TaskScores",
    "distinct_n",
    "get_task",
    "parse_generated_dialogue",
    "reference_row",
]
