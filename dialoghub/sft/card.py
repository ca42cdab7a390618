"""The SFT adapters' model cards, rendered from `models_repo/<adapter>/README.md.j2` with `ModelCard.from_template`,
and the one release path of a trained adapter folder, for the SFT and the reward-tuned adapters alike: its run
summary, the files it publishes, and the publication under the tag policy of `dialoghub.hub.client` (the
reward-tuned card, `dialoghub.reward.card`, is released through it too). The scripts push, as alignment-handbook's do.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

from dialoghub.core.files import atomic_write
from dialoghub.core.paths import REPO_ROOT
from dialoghub.hub.client import RELEASE_TAG, Publication, hub_session, publish_files, released_commit, resolve_repo
from dialoghub.models import prompts
from dialoghub.models.loading import FLOAT32, load_model

logger = logging.getLogger(__name__)

SUMMARY_FILE = "training_summary.json"
# What every adapter repo holds: the adapter and the tokenizer (with its chat template)
ADAPTER_FILES = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)
REQUIRED_FILES = ("adapter_config.json", "adapter_model.safetensors")

MODELS_REPO_DIR = REPO_ROOT / "models_repo"

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

# An SFT adapter's repo adds its loss curve and run summary
PUBLISHED_FILES = (*ADAPTER_FILES, "loss_curve.png", SUMMARY_FILE)


def write_summary(output_dir: str | Path, summary: dict[str, Any]) -> Path:
    """The run summary every card is rendered from, written whole or not at all."""
    path = Path(output_dir) / SUMMARY_FILE
    atomic_write(path, (json.dumps(summary, indent=2, default=str) + "\n").encode("utf-8"))
    return path


def read_summary(adapter_dir: str | Path, written_by: str = "scripts/train_adapter.py") -> dict[str, Any]:
    path = Path(adapter_dir) / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run {written_by} first")
    return json.loads(path.read_text(encoding="utf-8"))


def publish_adapter(
    adapter_dir: str | Path,
    repo_id: str,
    card: ModelCard,
    file_names: Sequence[str],
    commit_message: str,
    release_tag: str | None = None,
    api: HfApi | None = None,
) -> Publication:
    """Publish the adapter folder's `file_names` (those present; the adapter itself required) with `card` to
    `repo_id` as release `release_tag` (default `RELEASE_TAG`): the same adapter again is already released; another
    one under that tag is refused before anything is pushed."""
    adapter_dir = Path(adapter_dir)
    files = {name: adapter_dir / name for name in file_names if (adapter_dir / name).is_file()}
    if missing := set(REQUIRED_FILES) - set(files):
        raise FileNotFoundError(f"{adapter_dir} lacks {sorted(missing)}")
    return publish_files(
        api or HfApi(), files, card, repo_id, commit_message=commit_message, tag=release_tag or RELEASE_TAG
    )


def train_and_release(train, push, script_args, training_args, model_args, saved: str) -> None:
    """What an adapter script does, in the Hub session: nothing when `skip_if_released` finds the release, else
    `train(...)`, then `push(output_dir, hub_model_id, release_tag)` with `--push` (main process only)."""
    with hub_session():
        repo_id, release_tag = training_args.hub_model_id, script_args.release_tag
        if script_args.skip_if_released and (released := released_commit(repo_id, release_tag)):
            print(f"{repo_id}@{release_tag} is already released ({released}); kept")
            return
        trainer = train(script_args, training_args, model_args)
        if trainer.is_world_process_zero():
            print(f"{saved} saved to {training_args.output_dir}")
            if script_args.push:
                push(training_args.output_dir, repo_id, release_tag)
                print(f"Published to {repo_id} at tag {release_tag}")
        trainer.end()


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
    """Publish the adapter folder with its card to `repo_id` as release `release_tag` (the one release path above)."""
    release_tag = release_tag or RELEASE_TAG
    summary = read_summary(adapter_dir)
    card = adapter_card(summary, repo_id, release_tag)
    message = f"{summary['task']} adapter {release_tag} ({summary['base_model']})"
    return publish_adapter(adapter_dir, repo_id, card, PUBLISHED_FILES, message, release_tag, api)


def push_merged(
    adapter_dir: str | Path, repo_id: str, release_tag: str | None = None, api: HfApi | None = None
) -> Publication:
    """Merge the adapter into its base model (at the recorded revision) and publish the result as a model repo."""
    from transformers import AutoTokenizer

    adapter_dir = Path(adapter_dir)
    release_tag = release_tag or RELEASE_TAG
    summary = read_summary(adapter_dir)
    # A local base folder has no revision (trl's ModelConfig still records "main" for it)
    revision = summary.get("base_model_sha") or summary["base_model_revision"]
    base = resolve_repo(summary["base_model"], None if Path(summary["base_model"]).is_dir() else revision)
    # merged into full-precision weights, even after QLoRA
    merged = load_model(base, resolve_repo(str(adapter_dir)), dtype=FLOAT32, target_device="cpu").model
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
