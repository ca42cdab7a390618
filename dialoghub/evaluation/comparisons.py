"""The leaderboard's paired comparisons: an adapter against its base model (or any parent row) on the same test
dialogs, found in the results repo and written as a card section. The statistics are `dialoghub.metrics.paired`'s;
only metrics with per-dialog scores are compared (corpus BLEU and chrF have none).
"""

from __future__ import annotations

from typing import Any

from dialoghub.evaluation import results
from dialoghub.evaluation.tasks import get_task
from dialoghub.metrics.paired import PairedDelta, paired_deltas

SECTION_HEADING = "Paired comparisons"


def comparison_markdown(record: dict[str, Any], deltas: list[PairedDelta], parent: dict[str, Any]) -> str:
    task = get_task(record["task"])
    dataset = record["dataset"]
    lines = [
        f"Against **{parent['system']['label']}** on the same {deltas[0].n_pairs if deltas else 0} "
        f"{dataset['split']} dialogs of `{dataset['id']}@{dataset['sha'][:7]}`: the mean "
        f"per-dialog difference (this minus parent, points) with its paired-bootstrap "
        f"{round(record['bootstrap']['confidence'] * 100)}% interval ({record['bootstrap']['resamples']} resamples).",
        "",
        "| Metric | Δ | 95% CI |",
        "|---|---:|---:|",
    ]
    for delta in deltas:
        lines.append(
            f"| {task.label(delta.metric)} | {delta.delta:+.2f} | {delta.ci_low:+.2f} to {delta.ci_high:+.2f} |"
        )
    return "\n".join(lines)


def comparison_section(record: dict[str, Any], details: dict[str, list], results_repo: str, api=None):
    """The card section comparing an adapter row with its base model's zero-shot row from the results repo, as
    (heading, markdown); none when the row is no adapter's or the base model has no row there. (The reward-tuned
    adapter's comparison with its SFT parent is its card's before/after table, `dialoghub.evaluation.before_after`.)"""
    system = record["system"]
    if system["kind"] != results.ADAPTER:
        return None
    try:
        records, sha = results.load_records(results_repo, api=api)
    except results.ResultsRepoError:  # nothing evaluated yet, so no parent row
        return None
    task = get_task(record["task"])
    parent = results.latest_record(
        records,
        {"model_sha": system["model_sha"], "adapter_sha": None},
        group=results.group_key(record),
        kinds=(results.ZERO_SHOT,),
    )
    if parent is None:
        return None
    parent_details = results.load_details(results_repo, parent, sha)
    resamples, seed = record["bootstrap"]["resamples"], record["bootstrap"]["seed"]
    deltas = paired_deltas(details, parent_details, list(task.leaderboard_metrics), resamples, seed)
    return (SECTION_HEADING, comparison_markdown(record, deltas, parent)) if deltas else None
