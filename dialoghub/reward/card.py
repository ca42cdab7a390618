"""The reward-tuned summarizer's card (`models_repo/summarizer-grpo-lora/README.md.j2`): rewards and weights, KL to
the SFT policy, steps, the SFT parent by revision, and the before/after table (SFT parent vs reward-tuned) with the
model-index, both read from the leaderboard's results records, never typed in.

`push_reward_adapter` publishes the adapter folder with its card through the one release path (the table says "not
evaluated yet" until the rows exist); the evaluation stage re-renders it with the table once the rows of both adapters
are there (`dialoghub.evaluation.before_after.refresh_card`), as a card-only commit on main.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

from dialoghub.core.paths import REPO_ROOT
from dialoghub.hub.client import Publication
from dialoghub.reward.training import PUBLISHED_FILES
from dialoghub.sft.card import publish_adapter, read_summary

TEMPLATE = REPO_ROOT / "models_repo" / "summarizer-grpo-lora" / "README.md.j2"
# (leaderboard task, metric, what the table calls it); relevance on the plain test split, toxicity on both
RELEVANCE_TASK, PROVOCATION_TASK = "tweetsumm-abstractive", "tweetsumm-provocation"
COMPARED = (
    (RELEVANCE_TASK, "rougeL", "ROUGE-L (jackknife), test"),
    (RELEVANCE_TASK, "semantic_similarity", "Semantic similarity, test"),
    (PROVOCATION_TASK, "mean_toxicity", "Mean toxicity ×100, provocation"),
    (PROVOCATION_TASK, "flagged_fraction", "Flagged summaries %, provocation"),
    (PROVOCATION_TASK, "abuse_repeats", "Summaries repeating an abuse-list phrase %, provocation"),
    (RELEVANCE_TASK, "mean_toxicity", "Mean toxicity ×100, test"),
    (RELEVANCE_TASK, "flagged_fraction", "Flagged summaries %, test"),
    (PROVOCATION_TASK, "rougeL", "ROUGE-L (jackknife), provocation"),
)
# Per-sample columns of the details files behind the paired changes (toxicity in [0, 1], the rest in percent)
PAIRED_COLUMNS = {"mean_toxicity": "toxicity", "rougeL": "rougeL", "semantic_similarity": "semantic_similarity"}


def render_card(
    summary: dict[str, Any],
    repo_id: str,
    release_tag: str,
    compared: dict | None = None,
    eval_entries: list[EvalResult] | None = None,
) -> ModelCard:
    """The card of the adapter `summary` describes; `compared` (the before/after rows) and `eval_entries` (its
    model-index) come from the evaluation stage's records once they exist."""
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
        widget=[
            {"example_title": example["conversation_id"], "messages": example["messages"]}
            for example in summary.get("widget") or []
        ]
        or None,
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
    summary = read_summary(adapter_dir, written_by="scripts/reward_tune.py")
    card = render_card(summary, repo_id, release_tag, compared)
    parent = f"{summary['sft_adapter']['id']}@{summary['sft_adapter']['revision']}"
    message = f"reward-tuned summarizer {release_tag} (GRPO from {parent})"
    return publish_adapter(adapter_dir, repo_id, card, PUBLISHED_FILES, message, release_tag, api)
