"""The evaluation tasks: the framework in `base`, one module per task (the lighteval layout), registered here.

- `tweetsumm-abstractive`: dialogue -> summary, against every human summary of the dialog.
- `synthetic-dialogue`: summary -> dialogue, by round trip through a summarizer, role format and diversity.
- `tweetsumm-provocation`: summaries of dialogs whose customer swears, ranked by toxicity (lowest first).
"""

from dialoghub.evaluation.tasks.base import HUMAN, Doc, Scorers, Task, TaskScores, reference_row
from dialoghub.evaluation.tasks.synthetic_dialogue import SYNTHETIC_DIALOGUE, distinct_n, parse_generated_dialogue
from dialoghub.evaluation.tasks.tweetsumm_abstractive import TWEETSUMM_ABSTRACTIVE
from dialoghub.evaluation.tasks.tweetsumm_provocation import TWEETSUMM_PROVOCATION

# Registry order is the leaderboard's task order; the first task's dataset is the benchmark dataset.
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
