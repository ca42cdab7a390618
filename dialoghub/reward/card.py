"""The reward-tuned summarizer's card (`models_repo/summarizer-grpo-lora/README.md.j2`): rewards and weights, KL to
the SFT policy, steps, the SFT parent by revision, and the before/after table (SFT parent vs reward-tuned) with the
model-index, both read from the leaderboard's results records, never typed in.

`push_reward_adapter` publishes the adapter folder with its card (the table says "not evaluated yet" until the rows
exist); `refresh_card` re-renders the released adapter's card from the results repo once the evaluation rows of both
adapters are there, as a card-only commit on main (the release tag keeps pointing at the same adapter files).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, ModelCard, ModelCardData

from dialoghub.core.paths import REPO_ROOT
from dialoghub.hub.client.publish import Publication, publish_files

TEMPLATE = REPO_ROOT / "models_repo" / "summarizer-grpo-lora" / "README.md.j2"
# (leaderboard task, metric, what the table calls it); relevance on the plain test split, toxicity on both
RELEVANCE_TASK, PROVOCATION_TASK = "tweetsumm-abstractive", "tweetsumm-provocation"
COMPARED = (
    (RELEVANCE_TASK, "rougeL", "ROUGE-L (jackknife), test"),
    (RELEVANCE_TASK, "semantic_similarity", "Semantic similarity, test"),
    (PROVOCATION_TASK, "mean_toxicity", "Mean toxicity ×100, provocation"),
    (PROVOCATION_TASK, "flagged_fraction", "Flagged summaries %, provocation"),
    (RELEVANCE_TASK, "mean_toxicity", "Mean toxicity ×100, test"),
    (RELEVANCE_TASK, "flagged_fraction", "Flagged summaries %, test"),
    (PROVOCATION_TASK, "rougeL", "ROUGE-L (jackknife), provocation"),
)
# Per-sample columns of the details files behind the paired changes (toxicity in [0, 1], the rest in percent)
PAIRED_COLUMNS = {"mean_toxicity": "toxicity", "rougeL": "rougeL", "semantic_similarity": "semantic_similarity"}


def read_summary(adapter_dir: str | Path) -> dict[str, Any]:
    from dialoghub.reward.training import SUMMARY_FILE

    path = Path(adapter_dir) / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run scripts/reward_tune.py first")
    return json.loads(path.read_text(encoding="utf-8"))


def latest_record(records: list[dict], task: str, adapter_id: str, adapter_sha: str) -> dict | None:
    """The newest record of that adapter commit on the task's test split (full split: no limit)."""
    matching = [
        record
        for record in records
        if record["task"] == task
        and record["system"].get("adapter_id") == adapter_id
        and record["system"].get("adapter_sha") == adapter_sha
        and record["dataset"]["split"] == "test"
        and record["dataset"].get("limit") is None
    ]
    return max(matching, key=lambda record: record["created_at"], default=None)


def comparison(records: list[dict], sft: tuple[str, str], tuned: tuple[str, str], details=None) -> dict[str, Any]:
    """The before/after rows: each metric's estimate (value, 95 % interval) for the SFT parent and the reward-tuned
    adapter, and, where both have per-sample details (`details(record) -> {column: list}`), the paired bootstrap
    change (absolute, and relative to the parent in %) over the same dialogs."""
    from dialoghub.evaluation.comparisons import paired_change

    found = {
        (task, role): latest_record(records, task, *adapter)
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
    provocation = found[(PROVOCATION_TASK, "tuned")] or found[(PROVOCATION_TASK, "sft")]
    records_used = {f"{task}/{role}": record.get("results_file") for (task, role), record in found.items() if record}
    return {
        "provocation_dataset": provocation["dataset"]["id"] if provocation else None,
        "rows": rows,
        "records": records_used,
        "tuned_records": [found[(t, "tuned")] for t in (RELEVANCE_TASK, PROVOCATION_TASK) if found[(t, "tuned")]],
    }


def render_card(summary: dict[str, Any], repo_id: str, release_tag: str, compared: dict | None = None) -> ModelCard:
    from dialoghub.evaluation.leaderboard import results_url
    from dialoghub.evaluation.model_card import eval_results

    eval_entries = [
        entry
        for record in (compared or {}).get("tuned_records", [])
        for entry in eval_results(
            record, results_url(compared["results_repo"], compared["results_sha"], record["results_file"])
        )
    ]
    card_data = ModelCardData(
        model_name=repo_id.split("/")[-1],
        base_model=summary["base_model"]["id"],
        library_name="peft",
        pipeline_tag="text-generation",
        license=summary["license"],
        language=["en"],
        datasets=sorted(
            {
                summary["dataset"]["id"],
                *([summary["provocation_dataset"]["id"]] if summary.get("provocation_dataset") else []),
            }
        ),
        tags=["lora", "peft", "trl", "grpo", "summarization", "detoxification", "dialoghub"],
        eval_results=eval_entries or None,
        inference={"parameters": {"max_new_tokens": 128, "do_sample": False}},
    )
    return ModelCard.from_template(
        card_data,
        template_path=TEMPLATE,
        repo_id=repo_id,
        release_tag=release_tag,
        summary=summary,
        compared=compared,
    )


def push_reward_adapter(
    adapter_dir: str | Path, repo_id: str, release_tag: str, api: HfApi | None = None, compared: dict | None = None
) -> Publication:
    """Publish the adapter folder with its card as release `release_tag` (the one tag policy)."""
    from dialoghub.reward.training import PUBLISHED_FILES

    adapter_dir = Path(adapter_dir)
    summary = read_summary(adapter_dir)
    files = {name: adapter_dir / name for name in PUBLISHED_FILES if (adapter_dir / name).is_file()}
    if missing := {"adapter_config.json", "adapter_model.safetensors"} - set(files):
        raise FileNotFoundError(f"{adapter_dir} lacks {sorted(missing)}")
    card = render_card(summary, repo_id, release_tag, compared)
    parent = f"{summary['sft_adapter']['id']}@{summary['sft_adapter']['revision']}"
    message = f"reward-tuned summarizer {release_tag} (GRPO from {parent})"
    return publish_files(api or HfApi(), files, card, repo_id, commit_message=message, tag=release_tag)


def refresh_card(repo_id: str, release_tag: str, results_repo: str | None = None, api: HfApi | None = None) -> str:
    """Re-render the card of `repo_id`@`release_tag` with the before/after table and model-index from the results
    repo; pushed to main on top of its head (a concurrent commit makes it fail, not overwrite). Returns the commit."""
    import pandas as pd
    from huggingface_hub import hf_hub_download

    from dialoghub.evaluation import comparisons
    from dialoghub.evaluation.model_card import replace_section, section_of
    from dialoghub.evaluation.results import default_results_repo, load_records
    from dialoghub.hub.client.publish import tag_commit
    from dialoghub.reward.training import SUMMARY_FILE

    api = api or HfApi()
    released = tag_commit(api, repo_id, release_tag)
    if released is None:
        raise ValueError(f"{repo_id} has no release {release_tag}: publish it first (--push true)")
    summary = json.loads(Path(hf_hub_download(repo_id, SUMMARY_FILE, revision=released)).read_text(encoding="utf-8"))
    results_repo = results_repo or default_results_repo()
    records, results_sha = load_records(results_repo, api=api)

    def details(record: dict) -> dict[str, list]:
        path = hf_hub_download(results_repo, record["details_file"], repo_type="dataset", revision=results_sha)
        return pd.read_parquet(path).to_dict(orient="list")

    sft = (summary["sft_adapter"]["id"], summary["sft_adapter"]["sha"])
    compared = comparison(records, sft, (repo_id, released), details)
    compared["results_repo"], compared["results_sha"] = results_repo, results_sha
    card = render_card(summary, repo_id, release_tag, compared)
    head = api.model_info(repo_id).sha
    # The leaderboard's --update_card wrote a paired-comparison section into the card at head: keep it.
    current = Path(hf_hub_download(repo_id, "README.md", revision=head)).read_text(encoding="utf-8")
    if (kept := section_of(current, comparisons.SECTION_HEADING)) is not None:
        card.text = replace_section(card.text, comparisons.SECTION_HEADING, kept)
    return card.push_to_hub(
        repo_id, commit_message=f"Card: before/after from {results_repo}@{results_sha[:7]}", parent_commit=head
    ).oid
