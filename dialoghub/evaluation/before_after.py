"""The reward-tuned adapter's before/after table (SFT parent vs reward-tuned) and model-index, read from the
leaderboard's results records, never typed in: `refresh_card` re-renders the released adapter's card
(`dialoghub.reward.card`) once the evaluation rows of both adapters are there, as a card-only commit on main (the
release tag keeps pointing at the same adapter files). `scripts/reward_tune.py --refresh_card true` runs it."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean
from typing import Any

from huggingface_hub import HfApi

from dialoghub.evaluation.comparisons import SECTION_HEADING
from dialoghub.evaluation.model_card import eval_results, replace_section, section_of
from dialoghub.evaluation.results import default_results_repo, latest_record, load_details, load_records
from dialoghub.evaluation.submissions import results_url
from dialoghub.hub.client import tag_commit
from dialoghub.metrics.lengths import word_counts
from dialoghub.metrics.paired import paired_change, paired_rows
from dialoghub.reward.card import COMPARED, PAIRED_COLUMNS, PROVOCATION_TASK, RELEVANCE_TASK, render_card
from dialoghub.sft.card import SUMMARY_FILE

WORDS = "words"
# The card's before/after summaries: the provocation dialogs whose parent summary scored most toxic, where a
# detoxified summary shows whether it still says what the customer complained about.
EXAMPLES = 5


def comparison(records: list[dict], sft: tuple[str, str], tuned: tuple[str, str], details=None) -> dict[str, Any]:
    """The before/after rows: each metric's estimate (value, 95 % interval) for the SFT parent and the reward-tuned
    adapter, and, where both have per-sample details (`details(record) -> {column: list}`), the paired bootstrap
    change (absolute, and relative to the parent in %) over the same dialogs."""
    found = {
        (task, role): latest_record(records, {"adapter_id": adapter[0], "adapter_sha": adapter[1]}, task=task)
        for task in (RELEVANCE_TASK, PROVOCATION_TASK)
        for role, adapter in (("sft", sft), ("tuned", tuned))
    }
    rows = []
    for task, metric, label in COMPARED:
        before, after = found[(task, "sft")], found[(task, "tuned")]
        if before is None or after is None or metric not in before["metrics"] or metric not in after["metrics"]:
            continue
        row = {"label": label, "task": task, "metric": metric, "sft": before["metrics"][metric]}
        row["tuned"] = after["metrics"][metric]
        row["change"] = None
        if details is not None and metric in PAIRED_COLUMNS:
            row["change"] = paired_change(
                details(before), details(after), PAIRED_COLUMNS[metric], before["bootstrap"]["resamples"]
            )
        rows.append(row)
    lengths, examples = [], []
    if details is not None:
        for task, split in ((RELEVANCE_TASK, "test"), (PROVOCATION_TASK, "provocation")):
            before, after = found[(task, "sft")], found[(task, "tuned")]
            if before is not None and after is not None:
                resamples = before["bootstrap"]["resamples"]
                lengths.append(summary_lengths(split, details(before), details(after), resamples))
        before, after = found[(PROVOCATION_TASK, "sft")], found[(PROVOCATION_TASK, "tuned")]
        if before is not None and after is not None:
            examples = most_toxic_before(details(before), details(after))
    provocation = found[(PROVOCATION_TASK, "tuned")] or found[(PROVOCATION_TASK, "sft")]
    records_used = {f"{task}/{role}": record.get("results_file") for (task, role), record in found.items() if record}
    return {
        "provocation_dataset": provocation["dataset"]["id"] if provocation else None,
        "rows": rows,
        "lengths": lengths,
        "examples": examples,
        "records": records_used,
        "tuned_records": [found[(t, "tuned")] for t in (RELEVANCE_TASK, PROVOCATION_TASK) if found[(t, "tuned")]],
    }


def summary_lengths(split: str, before: dict[str, list], after: dict[str, list], resamples: int) -> dict[str, Any]:
    """Mean words per summary of the parent and the tuned adapter on `split`, and the paired change: a reward can
    lower toxicity by saying less, so the card shows the length beside it."""
    old, new = ({"id": side["id"], WORDS: word_counts(side["prediction"])} for side in (before, after))
    return {
        "split": split,
        "sft": fmean(old[WORDS]),
        "tuned": fmean(new[WORDS]),
        "change": paired_change(old, new, WORDS, resamples),
    }


def most_toxic_before(before: dict[str, list], after: dict[str, list], count: int = EXAMPLES) -> list[dict]:
    """The `count` dialogs whose parent summary scored most toxic (ties by id), with both summaries and scores."""
    pairs = paired_rows(after, before)
    if pairs is None:
        return []
    ranked = sorted(zip(*pairs, strict=True), key=lambda pair: (-before["toxicity"][pair[1]], before["id"][pair[1]]))
    return [
        {
            "id": before["id"][old],
            "sft": before["prediction"][old],
            "tuned": after["prediction"][new],
            "sft_toxicity": before["toxicity"][old],
            "tuned_toxicity": after["toxicity"][new],
        }
        for new, old in ranked[:count]
    ]


def refresh_card(repo_id: str, release_tag: str, results_repo: str | None = None, api: HfApi | None = None) -> str:
    """Re-render the card of `repo_id`@`release_tag` with the before/after table and model-index from the results
    repo; pushed to main on top of its head (a concurrent commit makes it fail, not overwrite). Returns the commit."""
    from huggingface_hub import hf_hub_download

    api = api or HfApi()
    released = tag_commit(api, repo_id, release_tag)
    if released is None:
        raise ValueError(f"{repo_id} has no release {release_tag}: publish it first (--push true)")
    summary = json.loads(Path(hf_hub_download(repo_id, SUMMARY_FILE, revision=released)).read_text(encoding="utf-8"))
    results_repo = results_repo or default_results_repo()
    records, results_sha = load_records(results_repo, api=api)

    loaded: dict[str, dict[str, list]] = {}

    def details(record: dict) -> dict[str, list]:
        # The table's paired changes, the lengths and the examples read the same files: download and parse each once
        if record["details_file"] not in loaded:
            loaded[record["details_file"]] = load_details(results_repo, record, results_sha)
        return loaded[record["details_file"]]

    sft = (summary["sft_adapter"]["id"], summary["sft_adapter"]["sha"])
    compared = comparison(records, sft, (repo_id, released), details)
    compared["results_repo"], compared["results_sha"] = results_repo, results_sha
    eval_entries = [
        entry
        for record in compared["tuned_records"]
        for entry in eval_results(record, results_url(results_repo, results_sha, record["results_file"]))
    ]
    card = render_card(summary, repo_id, release_tag, compared, eval_entries)
    head = api.model_info(repo_id).sha
    # The leaderboard's --update_card wrote the paired comparison with the base model into the card at head: keep it.
    current = Path(hf_hub_download(repo_id, "README.md", revision=head)).read_text(encoding="utf-8")
    if (kept := section_of(current, SECTION_HEADING)) is not None:
        card.text = replace_section(card.text, SECTION_HEADING, kept)
    return card.push_to_hub(
        repo_id, commit_message=f"Card: before/after from {results_repo}@{results_sha[:7]}", parent_commit=head
    ).oid
