"""The generator against the base model prompted with worked examples, on the same summaries.

A trained generator earns its place only if it beats what the base model does with one example in its prompt. Both
write a dialogue for the first `compare_samples` candidates of `compare_split` (the run's own seeded order, so the
generator's side is mostly the rows the run already wrote), every dialogue goes through the same filters and the same
round-trip summarizer, and the two are compared per summary with a paired bootstrap.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from dialoghub.metrics.bootstrap import bootstrap_indices
from dialoghub.metrics.paired import paired_estimates
from dialoghub.synthetic import filters

logger = logging.getLogger(__name__)

BASELINE_SUFFIX = "-baseline"
COMPARED_METRICS = {
    "passed_text_filters": "Passed the text filters %",
    "kept": "Kept (every filter) %",
    "round_trip_rouge_l": "Round-trip ROUGE-L",
}


def per_summary_scores(rows: list[dict]) -> dict[str, list[float]]:
    """Per row: passed the text filters (0/100), kept (0/100), and round-trip ROUGE-L x 100, 0 for a dialogue that
    got no round-trip summary (as the leaderboard's synthetic-dialogue task scores an invalid dialogue)."""
    return {
        "passed_text_filters": [100.0 * (not set(filters.TEXT_FILTERS) & set(row["reasons"])) for row in rows],
        "kept": [100.0 * (row["status"] == "kept") for row in rows],
        "round_trip_rouge_l": [100.0 * (row["round_trip_rouge_l"] or 0.0) for row in rows],
    }


def compare(generator_rows: list[dict], baseline_rows: list[dict], n_bootstrap: int = 1000, seed: int = 0) -> dict:
    """Each side's mean with its 95 % interval, and the paired difference (generator - baseline) with its own."""
    keys = [(row["source_conversation_id"], row["source_summary_index"]) for row in generator_rows]
    baseline_keys = [(row["source_conversation_id"], row["source_summary_index"]) for row in baseline_rows]
    if keys != baseline_keys:
        raise ValueError("the generator and the baseline were not given the same summaries in the same order")
    indices = bootstrap_indices(len(keys), n_bootstrap, seed)
    ours, theirs = per_summary_scores(generator_rows), per_summary_scores(baseline_rows)
    metrics = {}
    for name in COMPARED_METRICS:
        estimates = paired_estimates(ours[name], theirs[name], indices)
        metrics[name] = {
            side: dataclasses.asdict(estimates[key])
            for side, key in (("generator", "ours"), ("baseline", "theirs"), ("difference", "difference"))
        }
    return {"samples": len(keys), "n_bootstrap": n_bootstrap, "seed": seed, "metrics": metrics}


def baseline_config(config: Any):
    """The run's settings with the base model alone (no adapter) and `baseline_few_shot` worked examples."""
    return dataclasses.replace(config, adapter=None, few_shot=config.baseline_few_shot)


def comparison_provenance(config: Any, baseline_generator: Any) -> dict:
    return {
        "split": config.compare_split,
        "source_split": config.source_split_of(config.compare_split),
        "samples": config.compare_samples,
        "baseline": baseline_generator.provenance() | {"few_shot": config.baseline_few_shot},
    }


def format_comparison(found: dict) -> str:
    """The comparison as a few lines of text, for the script's output."""
    baseline = f"base + {found['baseline']['few_shot']}-shot"
    lines = [f"On {found['samples']} {found['split']} summaries: this generator | {baseline} | difference [95 % CI]"]
    for name, label in COMPARED_METRICS.items():
        sides = found["metrics"][name]
        difference = sides["difference"]
        lines.append(
            f"  {label:<28} {sides['generator']['value']:6.1f} | {sides['baseline']['value']:6.1f} | "
            f"{difference['value']:+6.1f} [{difference['ci_low']:+.1f}, {difference['ci_high']:+.1f}]"
        )
    return "\n".join(lines)
