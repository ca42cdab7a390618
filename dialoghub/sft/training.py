"""LoRA/QLoRA supervised fine-tuning of the summarizer and dialogue-generator adapters.

The arguments are trl's dataclasses, extended (`AdapterScriptArguments`, `AdapterSFTConfig`; `ModelConfig` as is), so
a recipe YAML parsed by `trl.TrlParser` and CLI flags set the same fields. `scripts/train_adapter.py` is the entry
point and publishes; `train` is the whole run and returns the trainer, callable from tests.

Speed without changing what is learned: `AdapterSFTTrainer` (`dialoghub/sft/trainer.py`) feeds each batch
padding-free and projects through the LM head only the positions whose next token is in the loss.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import load_dataset
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint
from trl import ModelConfig, ScriptArguments, SFTConfig, SFTTrainer, get_peft_config, get_quantization_config

from dialoghub.core.files import package_versions, save_figure
from dialoghub.core.recipes import resolve_dtype, trainer_parser
from dialoghub.hub.client import resolve_repo
from dialoghub.models import prompts
from dialoghub.models.loading import load_tokenizer
from dialoghub.sft.card import write_summary
from dialoghub.sft.trainer import SEGMENT_LENGTHS, AdapterSFTTrainer, has_varlen_kernel, shared_prefix_example

logger = logging.getLogger(__name__)

LOSS_CURVE_FILE = "loss_curve.png"
ALL_LINEAR = "all-linear"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclass
class AdapterScriptArguments(ScriptArguments):
    """trl's `ScriptArguments` plus what an adapter run needs: task, dataset revision, subsets, resume, push."""

    task: str = field(
        default=prompts.SUMMARIZE, metadata={"help": "What the adapter learns.", "choices": prompts.TASKS}
    )
    dataset_revision: str = field(
        default="main", metadata={"help": "Branch, tag or commit of the dataset repo; recorded in the model card."}
    )
    all_summaries: bool = field(
        default=False,
        metadata={
            "help": "One training example per reference summary (2,629 for tweetsumm) instead of one per dialog."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep the first N training dialogs (before expanding to summaries)."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep the first N evaluation dialogs."})
    full_data: bool = field(
        default=False, metadata={"help": "Ignore max_train_samples and max_eval_samples: use every dialog."}
    )
    resume: bool = field(
        default=False, metadata={"help": "Resume from the last checkpoint in output_dir (an error if there is none)."}
    )
    push: bool = field(
        default=False,
        metadata={"help": "After training, publish the adapter with its card to hub_model_id and tag release_tag."},
    )
    release_tag: str | None = field(default=None, metadata={"help": "Tag of the published revision, e.g. v1.0."})
    skip_if_released: bool = field(
        default=False,
        metadata={
            "help": "Train nothing when hub_model_id already has release_tag: a release is never replaced, so retrain "
            "under a new release_tag."
        },
    )
    license: str = field(default="apache-2.0", metadata={"help": "License of the published adapter."})


@dataclass
class AdapterSFTConfig(SFTConfig):
    """trl's `SFTConfig` plus the two exact speed-ups of `AdapterSFTTrainer`."""

    completion_logits_only: bool = field(
        default=True,
        metadata={
            "help": "Project through the LM head only the positions whose next token is in the loss. trl does that "
            "only on Triton devices; on CPU it projects every position, prompt included."
        },
    )
    flatten_batches: bool = field(
        default=True,
        metadata={
            "help": "Padding-free batches of the max_length-truncated sequences, attention computed per sequence "
            "(trl's own padding_free requires packing or max_length=None, and flash-attention to be fast)."
        },
    )
    share_prompt: bool = field(
        default=True,
        metadata={
            "help": "Tokenize the examples here: a dialog too long for max_length cut in its middle turns, never its "
            "summary (prompts.fit_dialogue), and a generate target over max_length an error; with flatten_batches "
            "(and sdpa/eager attention) also every reference summary of a dialog (with all_summaries) in one "
            "sequence that computes the dialog once (sft/trainer.py shared_prefix_example). Off: trl tokenizes one "
            "example per summary and truncates at max_length, cutting summaries."
        },
    )


def lora_config(model_args: ModelConfig):
    """trl's `get_peft_config`, with the base revision recorded in adapter_config.json."""
    if model_args.lora_target_modules in ([ALL_LINEAR], ALL_LINEAR):
        # From the CLI a list arrives; peft recognises the shorthand only as a string
        model_args.lora_target_modules = ALL_LINEAR
    peft_config = get_peft_config(model_args)
    if peft_config is not None:
        peft_config.revision = model_args.model_revision
    return peft_config


def model_init_kwargs(model_args: ModelConfig, training_args: SFTConfig) -> dict[str, Any]:
    """What `SFTTrainer` passes to `from_pretrained`, like trl's sft script builds it."""
    kwargs = {
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
        "dtype": resolve_dtype(model_args.dtype, "cpu" if training_args.use_cpu else "cuda"),
    }
    if model_args.load_in_4bit or model_args.load_in_8bit:
        kwargs["device_map"] = {"": "cpu"} if training_args.use_cpu else None
    return kwargs | (training_args.model_init_kwargs or {})


def load_sft_splits(
    script_args: AdapterScriptArguments,
    training_args: SFTConfig | None = None,
    tokenizer=None,
    attn_implementation: str | None = None,
):
    """(train, eval) datasets from the dataset repo at `dataset_revision`: trl's prompt-completion rows, or, with
    `share_prompt` (and a tokenizer), the fitted sequences of `encode_shared_prompt`: shared-prompt ones with
    `flatten_batches` (unless the attention is flash-attention's, which cannot mask them), one per completion else."""
    dataset = load_dataset(script_args.dataset_name, script_args.dataset_config, revision=script_args.dataset_revision)
    # Fitting dialogs to max_length does not depend on the batching: flatten_batches false keeps it (GPU recipes)
    encode = tokenizer is not None and getattr(training_args, "share_prompt", False)
    share = getattr(training_args, "flatten_batches", False) and not has_varlen_kernel(attn_implementation)
    splits = []
    for split, limit in (
        (script_args.dataset_train_split, script_args.max_train_samples),
        (script_args.dataset_test_split, script_args.max_eval_samples),
    ):
        if split not in dataset:
            raise ValueError(
                f"{script_args.dataset_name}@{script_args.dataset_revision} has no split {split!r} "
                f"(it has {sorted(dataset)})"
            )
        rows = dataset[split]
        if limit is not None and not script_args.full_data:
            rows = rows.select(range(min(limit, len(rows))))
        if encode:
            splits.append(
                encode_shared_prompt(
                    rows, script_args.task, tokenizer, training_args.max_length, script_args.all_summaries, share
                )
            )
        else:
            splits.append(prompts.to_sft_dataset(rows, script_args.task, script_args.all_summaries))
    return tuple(splits)


def encode_shared_prompt(rows, task: str, tokenizer, max_length: int | None, all_summaries: bool, share: bool = True):
    """Tokenized training sequences, one per distinct prompt of each dataset row (`shared_prefix_example`), or with
    `share` false one per completion (plain sequences, for padded batches or flash-attention).

    For summarize, a dialog whose prompt and longest summary exceed max_length loses middle turns until they fit
    (`prompts.fit_dialogue`), so no example is dropped and no summary is cut. For generate the completion is the
    dialogue: a sequence over max_length is an error, since cutting it would teach the model not to finish.
    """
    prompts.check_task(task)

    def token_count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(example: dict[str, Any]) -> dict[str, Any]:
        pairs = prompts.sft_rows(task, example, all_summaries)
        completions = [prompts.render_completion(tokenizer, pair["prompt"], pair["completion"]) for pair in pairs]
        completion_ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in completions]
        turns = example.get("dialogue")
        if task == prompts.SUMMARIZE and max_length is not None:
            budget = max_length - max(len(ids) for ids in completion_ids)
            turns = prompts.fit_dialogue(
                turns,
                lambda kept: token_count(prompts.render_prompt(tokenizer, prompts.summarize_messages(kept))) <= budget,
            )
        groups: dict[tuple[str, int], list[list[int]]] = {}
        for index, (pair, ids) in enumerate(zip(pairs, completion_ids, strict=True)):
            prompt = prompts.summarize_messages(turns) if task == prompts.SUMMARIZE else pair["prompt"]
            groups.setdefault((prompts.render_prompt(tokenizer, prompt), 0 if share else index), []).append(ids)
        cut_turns = len(example["dialogue"]) - len(turns) if task == prompts.SUMMARIZE else 0
        sequences = [
            shared_prefix_example(tokenizer(text, add_special_tokens=False)["input_ids"], ids)
            for (text, _), ids in groups.items()
        ]
        for sequence in sequences:
            longest = sequence[SEGMENT_LENGTHS][0] + max(sequence[SEGMENT_LENGTHS][1:], default=0)
            if max_length is not None and longest > max_length:
                raise ValueError(
                    f"conversation {example.get('conversation_id')}: {longest} tokens, over max_length {max_length}; "
                    "raise max_length (a generate target is never cut)"
                )
        return {
            "conversation_id": [example.get("conversation_id")] * len(sequences),
            "prompt": [prompts.summarize_messages(turns) if task == prompts.SUMMARIZE else pairs[0]["prompt"]]
            * len(sequences),
            "cut_turns": [cut_turns] * len(sequences),
            **{key: [sequence[key] for sequence in sequences] for key in ("input_ids", "labels", SEGMENT_LENGTHS)},
        }

    def encode_batch(batch: dict[str, list]) -> dict[str, list]:
        encoded = [
            encode({key: values[index] for key, values in batch.items()}) for index in range(len(batch["dialogue"]))
        ]
        return {key: [value for item in encoded for value in item[key]] for key in encoded[0]}

    dataset = rows.map(encode_batch, batched=True, remove_columns=rows.column_names, desc=f"{task} sequences")
    if cut := sum(1 for count in dataset["cut_turns"] if count):
        logger.info("%d of %d dialogs lost middle turns to fit max_length %s", cut, len(dataset), max_length)
    return dataset


def build_trainer(
    script_args: AdapterScriptArguments,
    training_args: SFTConfig,
    model_args: ModelConfig,
    train_dataset,
    eval_dataset=None,
    callbacks: list[TrainerCallback] | None = None,
    trainer_class: type[SFTTrainer] = AdapterSFTTrainer,
    tokenizer=None,
) -> SFTTrainer:
    """The LoRA (or QLoRA, with load_in_4bit) trainer, loss on the completion only."""
    training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)
    training_args.completion_only_loss = True
    if SEGMENT_LENGTHS in train_dataset.column_names:
        # Tokenized, labelled and fitted to max_length by encode_shared_prompt: trl's preparation would cut them
        training_args.dataset_kwargs = {**(training_args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    return trainer_class(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer or load_tokenizer(model_args.model_name_or_path, model_args.model_revision),
        peft_config=lora_config(model_args),
        quantization_config=get_quantization_config(model_args),
        callbacks=callbacks,
    )


def save_final_adapter(trainer: SFTTrainer, output_dir: Path) -> None:
    """The adapter and the tokenizer (the processing class), on every rank (saving gathers under FSDP/ZeRO-3).

    `Trainer.save_model` writes nothing under FSDP unless the state dict type is FULL_STATE_DICT, and
    models_repo/accelerate/fsdp_qlora.yaml keeps SHARDED_STATE_DICT for the checkpoints during training: the final
    save switches to the full type first, as PEFT's own SFT example does (examples/sft/train.py).
    """
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(output_dir))
    adapter = hasattr(trainer.accelerator.unwrap_model(trainer.model), "peft_config")
    if adapter and trainer.is_world_process_zero() and not (output_dir / ADAPTER_WEIGHTS).is_file():
        raise RuntimeError(f"no {ADAPTER_WEIGHTS} was written to {output_dir}: the adapter was not saved")


def resume_checkpoint(script_args: AdapterScriptArguments, training_args: SFTConfig) -> str | None:
    if training_args.resume_from_checkpoint:
        return training_args.resume_from_checkpoint
    if not script_args.resume:
        return None
    checkpoint = get_last_checkpoint(training_args.output_dir) if os.path.isdir(training_args.output_dir) else None
    if checkpoint is None:
        raise FileNotFoundError(f"--resume: no checkpoint-* folder in {training_args.output_dir}")
    return checkpoint


def check_report_to(training_args: SFTConfig) -> None:
    """Fail before loading anything if a tracker cannot be imported; say where trackio's local logs are."""
    for tracker in set(training_args.report_to or []) & {"trackio", "wandb"}:
        if importlib.util.find_spec(tracker) is None:
            raise ValueError(
                f"report_to={tracker}, but {tracker} is not installed: install it or pass --report_to none"
            )
    if "trackio" in (training_args.report_to or []) and not training_args.trackio_space_id:
        logger.info(
            "trackio logs to a local database; browse it with `trackio show --project %s`", training_args.project
        )


def plot_loss_curve(log_history: list[dict], path: str | Path) -> Path:
    """Training loss per logging step and validation loss per evaluation, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry]
    evaluation = [(entry["step"], entry["eval_loss"]) for entry in log_history if "eval_loss" in entry]
    if not train and not evaluation:
        raise ValueError("No loss was logged: set logging_steps no larger than the number of steps")
    figure, axes = plt.subplots(figsize=(6, 4))
    for points, label, style in ((train, "train", "-"), (evaluation, "validation", "o--")):
        if points:
            axes.plot(*zip(*points, strict=True), style, label=label)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss (completion tokens)")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, Path(path), dpi=100)


def hub_sha(name: str, revision: str | None, repo_type: str) -> str | None:
    """The commit a Hub revision points at; None for a local folder (trl's ModelConfig still says revision "main")."""
    return None if os.path.isdir(name) else resolve_repo(name, revision, repo_type).sha


def framework_versions() -> dict[str, str]:
    return package_versions(("torch", "transformers", "trl", "peft", "datasets"))


def training_summary(
    script_args: AdapterScriptArguments,
    training_args: SFTConfig,
    model_args: ModelConfig,
    trainer: SFTTrainer,
    eval_metrics: dict[str, float],
    widget_example: dict | None,
) -> dict[str, Any]:
    """Everything the model card needs, written beside the adapter as training_summary.json."""
    eval_loss = eval_metrics.get("eval_loss")
    return {
        "task": script_args.task,
        "prompt_version": prompts.PROMPT_VERSION,
        "base_model": model_args.model_name_or_path,
        "base_model_revision": model_args.model_revision,
        "base_model_sha": hub_sha(model_args.model_name_or_path, model_args.model_revision, "model"),
        "dataset": script_args.dataset_name,
        "dataset_config": script_args.dataset_config,
        "dataset_revision": script_args.dataset_revision,
        "dataset_sha": hub_sha(script_args.dataset_name, script_args.dataset_revision, "dataset"),
        "train_split": script_args.dataset_train_split,
        "eval_split": script_args.dataset_test_split,
        "train_examples": len(trainer.train_dataset),
        "eval_examples": len(trainer.eval_dataset) if trainer.eval_dataset is not None else 0,
        "all_summaries": script_args.all_summaries,
        "license": script_args.license,
        "eval_loss": eval_loss,
        "perplexity": math.exp(eval_loss) if eval_loss is not None else None,
        "global_step": trainer.state.global_step,
        "train_runtime_s": next((e["train_runtime"] for e in trainer.state.log_history if "train_runtime" in e), None),
        "hyperparameters": {
            "learning_rate": training_args.learning_rate,
            "lr_scheduler_type": getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type),
            "warmup_steps": training_args.warmup_steps,
            "num_train_epochs": training_args.num_train_epochs,
            "max_steps": training_args.max_steps,
            "per_device_train_batch_size": training_args.per_device_train_batch_size,
            "gradient_accumulation_steps": training_args.gradient_accumulation_steps,
            "world_size": training_args.world_size,
            "max_length": training_args.max_length,
            "seed": training_args.seed,
            "lora_r": model_args.lora_r,
            "lora_alpha": model_args.lora_alpha,
            "lora_dropout": model_args.lora_dropout,
            "lora_target_modules": model_args.lora_target_modules,
            "load_in_4bit": model_args.load_in_4bit,
            "dtype": training_args.model_init_kwargs.get("dtype", model_args.dtype),
        },
        "widget": widget_example,
        "framework_versions": framework_versions(),
    }


def widget_example(script_args: AdapterScriptArguments, eval_dataset) -> dict | None:
    """The first validation prompt, for the card's widget (built by the prompt module when the splits were made)."""
    if eval_dataset is None or len(eval_dataset) == 0:
        return None
    row = eval_dataset[0]
    return {"conversation_id": row["conversation_id"], "messages": row["prompt"]}


def final_eval_metrics(trainer: SFTTrainer) -> dict[str, float]:
    """The evaluation at the last step: the one the run logged, or a new one (which trackio files as a new run)."""
    for entry in reversed(trainer.state.log_history):
        if "eval_loss" in entry and entry["step"] == trainer.state.global_step:
            return entry
    return trainer.evaluate()


def train(
    script_args: AdapterScriptArguments,
    training_args: SFTConfig,
    model_args: ModelConfig,
    callbacks: list[TrainerCallback] | None = None,
) -> SFTTrainer:
    """Train, evaluate and save the adapter, tokenizer, loss curve and training summary to output_dir; the script
    publishes them (`dialoghub.sft.card.push_adapter`)."""
    if script_args.push and not training_args.hub_model_id:
        raise ValueError("--push needs --hub_model_id (the adapter repo, e.g. org/summarizer-lora)")
    check_report_to(training_args)
    tokenizer = load_tokenizer(model_args.model_name_or_path, model_args.model_revision)
    attention = model_args.attn_implementation
    train_dataset, eval_dataset = load_sft_splits(script_args, training_args, tokenizer, attention)
    trainer = build_trainer(
        script_args, training_args, model_args, train_dataset, eval_dataset, callbacks, tokenizer=tokenizer
    )
    trainer.train(resume_from_checkpoint=resume_checkpoint(script_args, training_args))
    eval_metrics = final_eval_metrics(trainer) if eval_dataset is not None else {}
    output_dir = Path(training_args.output_dir)
    save_final_adapter(trainer, output_dir)
    if trainer.is_world_process_zero():
        plot_loss_curve(trainer.state.log_history, output_dir / LOSS_CURVE_FILE)
        summary = training_summary(
            script_args, training_args, model_args, trainer, eval_metrics, widget_example(script_args, eval_dataset)
        )
        write_summary(output_dir, summary)
    return trainer


def parser(*extra_dataclasses, description: str | None = None):
    """The `TrlParser` of an adapter recipe (plus the fields of `extra_dataclasses`, for the entry points that read the
    same recipe); `description` heads its --help."""
    return trainer_parser(
        AdapterScriptArguments, AdapterSFTConfig, ModelConfig, *extra_dataclasses, description=description
    )


def parse_args(args: list[str] | None = None, description: str | None = None):
    """(script_args, training_args, model_args) from `--config recipe.yaml` and CLI overrides."""
    return parser(description=description).parse_args_and_config(args)
