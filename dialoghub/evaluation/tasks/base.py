"""The task framework (the lighteval style: a prompt function plus a config), shared by every task of this package.

A task reads one split of a dataset in the tweetsumm-clean schema. Its prompt function turns each row into a `Doc`
(the chat messages from `dialoghub.models.prompts`, the references, the input); its scorer turns the model's answers
into a `MetricsReport` (headline metrics with bootstrap intervals) plus per-sample detail columns. Generating the
answers is the caller's job (`dialoghub.evaluation.run`), so a task knows nothing about models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dialoghub.core.paths import project_org
from dialoghub.evaluation.baselines import baseline_predictions
from dialoghub.metrics import MetricsReport, SemanticSimilarity, ToxicityScorer, human_ceiling

HUMAN = "human"
DATASET_NAME = "tweetsumm-clean"

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
    """The metric the leaderboard ranks by (best first: see `headline_higher_is_better`)."""
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


def row_id(row: Mapping[str, Any]) -> str:
    return str(row.get("conversation_id") or "<no conversation_id>")


def report_details(docs: Sequence[Doc], predictions: Sequence[str], report: MetricsReport) -> dict[str, list]:
    """The details columns every task writes: the sample, its answer, its references, then the report's scores."""
    return {
        "id": [doc.id for doc in docs],
        "input": [doc.input for doc in docs],
        "prediction": list(predictions),
        "references": [doc.references for doc in docs],
        **report.per_sample,
    }


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
            "id": [row_id(row) for row in usable],
            "input": [task.prompt_function(row).input for row in usable],
            "references": [list(row["summaries"]) for row in usable],
            **report.per_sample,
        },
    )
