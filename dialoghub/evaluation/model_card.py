"""A leaderboard record's metrics written into the evaluated adapter's (or submitted model's) card as
`model-index`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from huggingface_hub import CommitOperationAdd, EvalResult, HfApi, ModelCard, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError
from huggingface_hub.repocard_data import model_index_to_eval_results

from dialoghub.evaluation.tasks import get_task
from dialoghub.metrics.report import metric_protocol
from dialoghub.sft.card import MODEL_INDEX_TASK_TYPES

SOURCE_NAME = "dialoghub leaderboard"


def eval_results(record: dict[str, Any], source_url: str | None = None) -> list[EvalResult]:
    """The task's leaderboard metrics of `record` as `huggingface_hub.EvalResult`s (values exactly as recorded)."""
    task = get_task(record["task"])
    dataset = record["dataset"]
    return [
        EvalResult(
            task_type=MODEL_INDEX_TASK_TYPES[task.prompt_task],
            task_name=task.name,
            dataset_type=dataset["id"],
            dataset_name=dataset["id"].split("/")[-1],
            dataset_config=dataset["config"],
            dataset_split=dataset["split"],
            dataset_revision=dataset["sha"],
            metric_type=metric,
            metric_name=f"{task.label(metric)} ({metric_protocol(metric, record['protocol'])})",
            metric_value=record["metrics"][metric]["value"],
            metric_config=metric_protocol(metric, record["protocol"]),
            source_name=SOURCE_NAME,
            source_url=source_url,
        )
        for metric in task.leaderboard_metrics
        if metric in record["metrics"]
    ]


def _same_slot(old, new) -> bool:
    return (old.task_name, old.dataset_type, old.dataset_split, old.metric_type, old.metric_config) == (
        new.task_name,
        new.dataset_type,
        new.dataset_split,
        new.metric_type,
        new.metric_config,
    )


def update_model_card(
    record: dict[str, Any],
    source_url: str | None = None,
    api=None,
    extra_operations: Sequence = (),
    create_pr: bool = False,
    card_sections: Sequence[tuple[str, str]] = (),
    repo_id: str | None = None,
):
    """Write the record's metrics into the evaluated adapter's card (`model-index`) as a new commit on its main
    branch; entries of the same task, dataset split, metric and protocol are replaced, others kept. Returns the sha.

    `extra_operations` (the `.eval_results` file) go into the same commit; `card_sections` are (heading, markdown)
    sections of the card text, replaced when the card has them already; `create_pr` opens a pull request with the
    commit instead, and returns the `CommitInfo` (its `pr_num`). `repo_id` names another repo than the adapter's (a
    submission of a zero-shot model's results to the model's repo)."""
    system = record["system"]
    if not (repo_id or system.get("adapter_id")):
        raise ValueError("update_card writes into the evaluated adapter's card: evaluate with --adapter")
    repo_id = repo_id or system["adapter_id"]
    api = api or HfApi()
    head = api.model_info(repo_id).sha
    try:
        card = ModelCard.load(hf_hub_download(repo_id, "README.md", revision=head))
    except EntryNotFoundError:
        card = ModelCard("---\n---\n")
    new = eval_results(record, source_url)
    card.data.model_name = card.data.model_name or repo_id.split("/")[-1]
    kept = [old for old in card.data.eval_results or [] if not any(_same_slot(old, entry) for entry in new)]
    card.data.eval_results = kept + new
    for heading, markdown in card_sections:
        card.text = replace_section(card.text, heading, markdown)
    card = ModelCard(str(card))  # re-parse what will be pushed, and check it the way the Hub's readers will
    _, parsed = model_index_to_eval_results(card.data.to_dict()["model-index"])
    for entry in new:
        if not any(_same_slot(read, entry) and read.metric_value == entry.metric_value for read in parsed):
            raise RuntimeError(f"{repo_id}: the card's model-index does not read back {entry.metric_type}")
    commit = api.create_commit(
        repo_id,
        [CommitOperationAdd("README.md", str(card).encode("utf-8")), *extra_operations],
        commit_message=f"Evaluation results: {record['task']} ({record['dataset']['split']} split)",
        parent_commit=None if create_pr else head,
        create_pr=create_pr,
    )
    return commit if create_pr else commit.oid


def section_of(text: str, heading: str) -> str | None:
    """The body of the `## heading` section of `text` (up to the next `## `), or None without one."""
    lines = text.splitlines()
    start = next((index for index, line in enumerate(lines) if line.strip() == f"## {heading}"), None)
    if start is None:
        return None
    end = next((index for index in range(start + 1, len(lines)) if lines[index].startswith("## ")), len(lines))
    return "\n".join(lines[start + 1 : end]).strip()


def replace_section(text: str, heading: str, markdown: str) -> str:
    """`text` with the `## heading` section (up to the next `## `) replaced by `markdown`, or with it appended."""
    lines, section = text.splitlines(), [f"## {heading}", "", *markdown.strip().splitlines(), ""]
    start = next((index for index, line in enumerate(lines) if line.strip() == f"## {heading}"), None)
    if start is None:
        return "\n".join([*lines, "", *section]).strip() + "\n"
    end = next((index for index in range(start + 1, len(lines)) if lines[index].startswith("## ")), len(lines))
    return "\n".join([*lines[:start], *section, *lines[end:]]).strip() + "\n"
