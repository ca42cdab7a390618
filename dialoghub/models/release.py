"""Model cards of the LoRA adapters, rendered from `models_repo/<adapter>/README.md.j2`, and their publication."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import jinja2
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

from dialoghub.core.paths import REPO_ROOT
from dialoghub.hub.client.publish import Publication, publish_files
from dialoghub.models import prompts

logger = logging.getLogger(__name__)

MODELS_REPO_DIR = REPO_ROOT / "models_repo"
DEFAULT_RELEASE_TAG = "v1.0"
SUMMARY_FILE = "training_summary.json"

# The card template of each task's adapter, and the Hub tag naming the task
ADAPTER_TEMPLATES = {
    prompts.SUMMARIZE: MODELS_REPO_DIR / "summarizer-lora" / "README.md.j2",
    prompts.GENERATE: MODELS_REPO_DIR / "dialogue-generator-lora" / "README.md.j2",
}
TASK_TAGS = {prompts.SUMMARIZE: "summarization", prompts.GENERATE: "dialogue-generation"}
# The `model-index` task type of every result on an adapter's card, training loss and leaderboard scores alike
MODEL_INDEX_TASK_TYPES = {prompts.SUMMARIZE: "summarization", prompts.GENERATE: "text-generation"}
# What the loss is computed on, in words
TASK_TARGETS = {prompts.SUMMARIZE: "summary", prompts.GENERATE: "dialogue"}
# The Results and Training sections both cards share; `jinja2.Template` (what `from_template` uses) cannot include
SHARED_SECTIONS_TEMPLATE = MODELS_REPO_DIR / "adapter-results-and-training.md.j2"
MERGED_TEMPLATE = MODELS_REPO_DIR / "merged-adapter.md.j2"

# What every adapter repo holds: the adapter and the tokenizer (with its chat template)
ADAPTER_FILES = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)
# An SFT adapter's repo adds its loss curve and run summary
PUBLISHED_FILES = (*ADAPTER_FILES, "loss_curve.png", SUMMARY_FILE)


def read_summary(adapter_dir: str | Path) -> dict[str, Any]:
    path = Path(adapter_dir) / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: train with scripts/train_adapter.py first")
    return json.loads(path.read_text(encoding="utf-8"))


def eval_results(summary: dict[str, Any]) -> list[EvalResult]:
    """Validation loss and perplexity on the completion tokens (until the evaluation's metrics are filled in)."""
    if summary.get("eval_loss") is None:
        return []
    common = {
        "task_type": MODEL_INDEX_TASK_TYPES[summary["task"]],
        "task_name": TASK_TAGS[summary["task"]],
        "dataset_type": summary["dataset"],
        "dataset_name": summary["dataset"].split("/")[-1],
        "dataset_config": summary.get("dataset_config"),
        "dataset_split": summary["eval_split"],
        "dataset_revision": summary.get("dataset_sha") or summary["dataset_revision"],
    }
    return [
        EvalResult(metric_type="loss", metric_name="Validation loss", metric_value=summary["eval_loss"], **common),
        EvalResult(metric_type="perplexity", metric_name="Perplexity", metric_value=summary["perplexity"], **common),
    ]


def _card(summary: dict[str, Any], repo_id: str, release_tag: str, merged: bool) -> ModelCard:
    task = prompts.check_task(summary["task"])
    widget = summary.get("widget")
    card_data = ModelCardData(
        model_name=repo_id.split("/")[-1],
        base_model=summary["base_model"],
        library_name="transformers" if merged else "peft",
        pipeline_tag="text-generation",
        license=summary["license"],
        language=["en"],
        datasets=[summary["dataset"]],
        tags=["merged-lora" if merged else "lora", "peft", "trl", "sft", TASK_TAGS[task], "dialoghub"],
        eval_results=eval_results(summary) or None,
        widget=[{"example_title": widget["conversation_id"], "messages": widget["messages"]}] if widget else None,
        # The Hub's inference widget reads its generation parameters here: greedy, with the task's answer length.
        inference={"parameters": {"max_new_tokens": prompts.ANSWER_MAX_NEW_TOKENS[task], "do_sample": False}},
    )
    results_and_training = jinja2.Template(SHARED_SECTIONS_TEMPLATE.read_text(encoding="utf-8")).render(
        summary=summary,
        target=TASK_TARGETS[task],
        hyperparameters=summary["hyperparameters"],
        framework_versions=summary["framework_versions"],
    )
    return ModelCard.from_template(
        card_data,
        template_path=MERGED_TEMPLATE if merged else ADAPTER_TEMPLATES[task],
        repo_id=repo_id,
        release_tag=release_tag,
        summary=summary,
        task_tag=TASK_TAGS[task],
        max_new_tokens=prompts.ANSWER_MAX_NEW_TOKENS[task],
        results_and_training=results_and_training,
    )


def adapter_card(summary: dict[str, Any], repo_id: str, release_tag: str) -> ModelCard:
    """The card of the adapter that `summary` (its training_summary.json) describes, for `repo_id`@`release_tag`."""
    return _card(summary, repo_id, release_tag, merged=False)


def merged_card(summary: dict[str, Any], repo_id: str, release_tag: str) -> ModelCard:
    """The card of the base model with that adapter merged into its weights."""
    return _card(summary, repo_id, release_tag, merged=True)


def push_adapter(
    adapter_dir: str | Path, repo_id: str, release_tag: str | None = None, api: HfApi | None = None
) -> Publication:
    """Publish the adapter folder with its card to `repo_id` as release `release_tag` (the tag policy of
    `dialoghub.hub.client.publish`: the same adapter again is already released; another one under that tag is
    refused)."""
    adapter_dir = Path(adapter_dir)
    release_tag = release_tag or DEFAULT_RELEASE_TAG
    summary = read_summary(adapter_dir)
    files = {name: adapter_dir / name for name in PUBLISHED_FILES if (adapter_dir / name).is_file()}
    missing = {"adapter_config.json", "adapter_model.safetensors"} - set(files)
    if missing:
        raise FileNotFoundError(f"{adapter_dir} lacks {sorted(missing)}")
    message = f"{summary['task']} adapter {release_tag} ({summary['base_model']})"
    card = adapter_card(summary, repo_id, release_tag)
    return publish_files(api or HfApi(), files, card, repo_id, commit_message=message, tag=release_tag)


def push_merged(
    adapter_dir: str | Path, repo_id: str, release_tag: str | None = None, api: HfApi | None = None
) -> Publication:
    """Merge the adapter into its base model (at the recorded revision) and publish the result as a model repo."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir = Path(adapter_dir)
    release_tag = release_tag or DEFAULT_RELEASE_TAG
    summary = read_summary(adapter_dir)
    base = AutoModelForCausalLM.from_pretrained(
        summary["base_model"],
        revision=summary.get("base_model_sha") or summary["base_model_revision"],
        dtype=torch.float32,  # merge into full-precision weights, even after QLoRA
    )
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    with tempfile.TemporaryDirectory(prefix="dialoghub-merged-") as folder:
        folder = Path(folder)
        merged.save_pretrained(folder)
        AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(folder)
        files = {path.name: path for path in folder.iterdir() if path.is_file()}
        files |= {
            name: adapter_dir / name for name in ("loss_curve.png", SUMMARY_FILE) if (adapter_dir / name).is_file()
        }
        message = f"{summary['task']} adapter {release_tag} merged into {summary['base_model']}"
        card = merged_card(summary, repo_id, release_tag)
        return publish_files(api or HfApi(), files, card, repo_id, commit_message=message, tag=release_tag)
