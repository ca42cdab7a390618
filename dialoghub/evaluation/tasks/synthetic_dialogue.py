"""`synthetic-dialogue`: summary (the row's first) -> dialogue.

Metrics: ROUGE against the original dialogue; round-trip consistency (a summarizer summarizes the generated dialogue,
compared with the input summary); role-format validity; distinct-n.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any

from rouge_score.tokenizers import DefaultTokenizer

from dialoghub.core.ngrams import distinct_n
from dialoghub.evaluation.tasks.base import Doc, Scorers, Task, TaskScores, report_details, row_id
from dialoghub.metrics import (
    ROUGE_TYPES,
    MetricsReport,
    bootstrap_indices,
    mean_estimate,
    rouge_per_sample,
    summarize_toxicity,
)
from dialoghub.metrics.bootstrap import DEFAULT_CONFIDENCE
from dialoghub.models import prompts
from dialoghub.synthetic.filters import FilterConfig, parse_generated

DISTINCT_ORDERS = (1, 2)
# A model that wraps a long turn over two lines still wrote the dialogue: the leaderboard reads such a line as the
# turn's continuation. The synthetic stage's default ends the dialogue there instead, since it publishes the turns.
FORMAT_RULES = FilterConfig(allow_continuation_lines=True)


def generate_prompt(row: Mapping[str, Any]) -> Doc:
    where = f"conversation {row_id(row)}"
    return Doc(
        id=row_id(row),
        messages=prompts.prompt_messages(prompts.GENERATE, row, summary_index=0),
        references=[prompts.render_dialogue(row["dialogue"], where)],
        input=prompts.target_text(prompts.SUMMARIZE, row, summary_index=0),
    )


def parse_generated_dialogue(text: str) -> tuple[list[dict[str, str]] | None, str]:
    """The turns of a generated dialogue and "" if its role format is valid; else None and the reason.

    The format rules are the synthetic filters' (`dialoghub.synthetic.filters.parse_generated`): every line a
    `Customer:`/`Agent:` turn or the continuation of one, no other speaker, no empty turn, roles alternating, both
    speaking."""
    parsed = parse_generated(text, FORMAT_RULES)
    return (None, parsed.format_error) if parsed.format_error else (parsed.dialogue, "")


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
    details = report_details(docs, predictions, report)
    details["format_error"] = [error for _, error in parsed]
    details["round_trip_summary"] = round_trip
    return TaskScores(report, details)


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
