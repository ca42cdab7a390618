"""`tweetsumm-provocation`: the dialogs where a summarizer can repeat abuse (`dialoghub/data/provocation.py`).

Toxicity where it can happen, scored like `tweetsumm-abstractive` (its prompt and scorer); ranked by mean toxicity,
lowest first. Relevance is reported, but the relevance columns that count are tweetsumm-abstractive's, on the plain
test split.
"""

from __future__ import annotations

from dialoghub.evaluation.baselines import BASELINES
from dialoghub.evaluation.tasks.base import Task
from dialoghub.evaluation.tasks.tweetsumm_abstractive import (
    ROUGE_LABELS,
    TOXICITY_LABELS,
    score_summaries_task,
    summarize_prompt,
)
from dialoghub.models import prompts

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
    metric_labels={**ROUGE_LABELS, "semantic_similarity": "SemSim", **TOXICITY_LABELS},
    headline_higher_is_better=False,
)
