"""Paired comparisons: an adapter against its base model (or any parent row) on the same test dialogs.

The difference of per-dialog scores is resampled with the leaderboard's own bootstrap (`bootstrap_indices`, the same
seed), so the interval is that of the paired difference, much narrower than two overlapping per-row intervals. Only
metrics with per-dialog scores are compared (corpus BLEU and chrF have none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from huggingface_hub import hf_hub_download

from dialoghub.evaluation import results
from dialoghub.evaluation.tasks import get_task
from dialoghub.metrics import bootstrap_indices
from dialoghub.metrics.bootstrap import DEFAULT_CONFIDENCE, percentile_interval, statistic_estimate

SECTION_HEADING = "Paired comparisons"


@dataclass(frozen=True)
class PairedDelta:
    metric: str
    delta: float
    ci_low: float
    ci_high: float
    n_pairs: int


def paired_deltas(
    details: dict[str, list],
    parent_details: dict[str, list],
    metrics: list[str],
    n_resamples: int,
    seed: int,
    confidence: float = DEFAULT_CONFIDENCE,
) -> list[PairedDelta]:
    """Mean difference (this minus parent) of each metric over the dialogs both scored, with its interval."""
    pairs = paired_rows(details, parent_details)
    if pairs is None:
        return []
    ours, theirs = pairs
    indices = bootstrap_indices(len(ours), n_resamples, seed)
    deltas = []
    for metric in metrics:
        if metric not in details or metric not in parent_details:
            continue
        differences = (
            np.asarray(details[metric], dtype=float)[ours] - np.asarray(parent_details[metric], dtype=float)[theirs]
        )
        low, high = percentile_interval(differences[indices].mean(axis=1), confidence)
        deltas.append(PairedDelta(metric, float(differences.mean()), low, high, len(ours)))
    return deltas


def paired_rows(details: dict[str, list], parent_details: dict[str, list]) -> tuple[np.ndarray, np.ndarray] | None:
    """The row indices of the dialogs both details scored (this side's, the parent's), or None if they share none."""
    parent_row = {sample_id: index for index, sample_id in enumerate(parent_details["id"])}
    pairs = [
        (index, parent_row[sample_id]) for index, sample_id in enumerate(details["id"]) if sample_id in parent_row
    ]
    if not pairs:
        return None
    ours, theirs = (np.array(side) for side in zip(*pairs, strict=True))
    return ours, theirs


def paired_change(
    before: dict[str, list], after: dict[str, list], column: str, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The change of `column`'s mean from `before` to `after` (details columns, each with `id`), over the dialogs
    both scored: `absolute` (after - before, in the column's unit) and `relative` (in % of before's mean), each a
    point estimate with its 95 % interval, on the leaderboard's bootstrap indices."""
    pairs = paired_rows(after, before)
    if pairs is None:
        raise ValueError("the two rows share no scored dialog")
    new = np.asarray(after[column], dtype=float)[pairs[0]]
    old = np.asarray(before[column], dtype=float)[pairs[1]]
    indices = bootstrap_indices(len(new), n_bootstrap, seed)

    def absolute(resample: np.ndarray) -> float:
        return float(new[resample].mean() - old[resample].mean())

    def relative(resample: np.ndarray) -> float:
        baseline = old[resample].mean()
        return float(100 * (new[resample].mean() - baseline) / baseline) if baseline else float("nan")

    return {
        "n": len(new),
        **{
            name: vars(statistic_estimate(statistic, len(new), indices))
            for name, statistic in (("absolute", absolute), ("relative", relative))
        },
    }


def parent_record(records: list[dict[str, Any]], record: dict[str, Any], model_sha: str, adapter_sha: str | None):
    """The latest record of the parent system (model at `model_sha`, with `adapter_sha` or none) in the record's
    leaderboard group, or none."""
    candidates = [
        other
        for other in records
        if results.group_key(other) == results.group_key(record)
        and other["system"].get("model_sha") == model_sha
        and other["system"].get("adapter_sha") == adapter_sha
        and other["system"]["kind"] in (results.ZERO_SHOT, results.ADAPTER)
    ]
    return max(candidates, key=lambda other: other["created_at"], default=None)


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


def comparison_section(
    record: dict[str, Any],
    details: dict[str, list],
    results_repo: str,
    parent_adapter_sha: str | None = None,
    api=None,
):
    """The card section comparing an adapter row with its base model's zero-shot row (and, given
    `parent_adapter_sha`, with that adapter's row: the reward-tuned adapter's SFT parent) from the results repo, as
    (heading, markdown); none when the row is no adapter's or no parent row is there."""
    system = record["system"]
    if system["kind"] != results.ADAPTER:
        return None
    try:
        records, sha = results.load_records(results_repo, api=api)
    except results.ResultsRepoError:  # nothing evaluated yet, so no parent row
        return None
    task = get_task(record["task"])
    tables = []
    for adapter_sha in dict.fromkeys([None, parent_adapter_sha]):
        parent = parent_record(records, record, system["model_sha"], adapter_sha)
        if parent is None:
            continue
        path = hf_hub_download(results_repo, parent["details_file"], repo_type="dataset", revision=sha)
        parent_details = pd.read_parquet(path).to_dict(orient="list")
        resamples, seed = record["bootstrap"]["resamples"], record["bootstrap"]["seed"]
        deltas = paired_deltas(details, parent_details, list(task.leaderboard_metrics), resamples, seed)
        if deltas:
            tables.append(comparison_markdown(record, deltas, parent))
    return (SECTION_HEADING, "\n\n".join(tables)) if tables else None
