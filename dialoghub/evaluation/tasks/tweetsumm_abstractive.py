"""`tweetsumm-abstractive`: dialogue -> summary, scored against every human summary of the dialog (jackknifed
ROUGE-L first), with the human leave-one-out ceiling and the baselines as rows that need no model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dialoghub.evaluation.baselines import BASELINES
from dialoghub.evaluation.tasks.base import HUMAN, Doc, Scorers, Task, TaskScores, report_details, row_id
from dialoghub.metrics import score_summaries
from dialoghub.models import prompts

ROUGE_LABELS = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}
# Mean toxicity probability and the share of summaries at or over the flag threshold, both x100 (lower is better)
TOXICITY_LABELS = {"mean_toxicity": "Toxicity ×100", "flagged_fraction": "Flagged %"}


def summarize_prompt(row: Mapping[str, Any]) -> Doc:
    summaries = row.get("summaries")
    if isinstance(summaries, str) or not summaries or not all(isinstance(text, str) for text in summaries):
        raise ValueError(f"conversation {row_id(row)}: 'summaries' must be a non-empty list of strings")
    return Doc(
        id=row_id(row),
        messages=prompts.prompt_messages(prompts.SUMMARIZE, row),
        references=[" ".join(summary.split()) for summary in summaries],
        input=prompts.render_dialogue(row["dialogue"], f"conversation {row_id(row)}"),
    )


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
    return TaskScores(report, report_details(docs, predictions, report))


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
        **ROUGE_LABELS,
        "ref1_rougeL": "R-L 1 ref",
        "semantic_similarity": "SemSim",
        "bleu": "BLEU",
        "chrf": "chrF",
        **TOXICITY_LABELS,
    },
)
