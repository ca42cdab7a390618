"""Reward fine-tuning of the summarizer adapter with trl's `GRPOTrainer`: relevance, non-toxicity and format rewards
(`dialoghub.reward.rewards`), weighted by trl's `reward_weights`, starting from the published SFT adapter `ID@REV`.

The policy is the base model with the SFT adapter loaded trainable (`PeftModel.from_pretrained(...,
is_trainable=True)`), so only its LoRA matrices train. The KL term (`beta` > 0) is taken against the SFT policy, not
the bare base: handed a `PeftModel` that already carries an adapter, trl (>= 1.x) copies it into a frozen `ref` adapter
and computes the reference log-probabilities through it. Disabling the adapter instead (what trl does for a fresh
`peft_config`) would pull the policy back to the zero-shot base, undoing the SFT. `build_trainer` checks that the
reference adapter exists and is frozen, and `kl` in the logs is the KL to the SFT policy.

Prompts come from train-split dialogs only: `provocation_fraction` of them from the provocation dataset's `train`
split (train dialogs whose customer swears, or with a phrase of the train abuse list inserted), the rest plain train
dialogs of tweetsumm-clean. Each is `prompts.summarize_messages` of its dialogue, the prompt the evaluation uses.
With `validation_every`, the run scores the policy on held-out validation dialogs as it trains and stops where the
curve flattens (`dialoghub.reward.validation`); the card shows that curve. The card's widget examples are validation
dialogs, one plain and one abusive.
`scripts/reward_tune.py` is the entry point and publishes; `train` is the whole run and returns the trainer.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelerate import PartialState
from datasets import concatenate_datasets, load_dataset
from trl import GRPOConfig, GRPOTrainer, ModelConfig, ScriptArguments, get_quantization_config

from dialoghub.core.files import package_versions, save_figure
from dialoghub.core.paths import project_org
from dialoghub.core.recipes import AUTO, resolve_dtype, trainer_parser
from dialoghub.data.provocation import PROVOCATION_RELEASE
from dialoghub.hub.client import RELEASE_TAG, resolve_repo
from dialoghub.metrics.scorers import load_semantic_similarity, load_toxicity
from dialoghub.models import prompts
from dialoghub.models.loading import adapter_base, load_model, load_tokenizer
from dialoghub.reward import rewards
from dialoghub.reward.trainer import RewardGRPOConfig, SharedPromptGRPOTrainer
from dialoghub.reward.validation import ValidationCurve
from dialoghub.sft.card import ADAPTER_FILES, SUMMARY_FILE, write_summary

logger = logging.getLogger(__name__)

REWARD_CURVE_FILE = "reward_curve.png"
VALIDATION_CURVE_FILE = "validation_curve.png"
SFT_ADAPTER = "default"
REFERENCE_ADAPTER = "ref"  # the name trl gives the frozen copy of the SFT adapter
PUBLISHED_FILES = (*ADAPTER_FILES, REWARD_CURVE_FILE, VALIDATION_CURVE_FILE, SUMMARY_FILE)


@dataclass
class RewardScriptArguments(ScriptArguments):
    """What a reward-tuning run needs besides trl's GRPOConfig and ModelConfig."""

    sft_adapter: str = field(
        default=f"{project_org()}/summarizer-lora@{RELEASE_TAG}",
        metadata={"help": "The SFT summarizer adapter the policy starts from (and the KL reference), ID@REV."},
    )
    dataset_revision: str = field(
        default=RELEASE_TAG, metadata={"help": "Revision of dataset_name (tweetsumm-clean)."}
    )
    provocation_dataset: str | None = field(
        default=f"{project_org()}/tweetsumm-provocation@{PROVOCATION_RELEASE}",
        metadata={"help": "Dataset of abusive train dialogs (ID@REV; none: plain prompts only)."},
    )
    provocation_split: str = field(default="train", metadata={"help": "Its split of train-dialog prompts."})
    provocation_fraction: float = field(
        default=0.5, metadata={"help": "Share of the prompts drawn from the provocation dataset."}
    )
    max_train_prompts: int = field(default=32, metadata={"help": "Prompts of the run (ignored with full_data)."})
    full_data: bool = field(
        default=False,
        metadata={"help": "Every provocation prompt, and plain train dialogs in provocation_fraction's proportion."},
    )
    validation_every: int = field(
        default=0,
        metadata={
            "help": "Score the policy on the validation prompts before the first step and every this many optimizer "
            "steps, and stop where the curve flattens (0: no curve)."
        },
    )
    validation_split: str = field(
        default="validation", metadata={"help": "The provocation dataset's held-out split (toxicity on the curve)."}
    )
    validation_prompts: int = field(
        default=48,
        metadata={"help": "Prompts of each validation set (abusive, plain), the first ones (0: all)."},
    )
    early_stopping_patience: int = field(
        default=2, metadata={"help": "Evaluations without a toxicity gain before the run stops (0: never)."}
    )
    early_stopping_min_improvement: float = field(
        default=0.5, metadata={"help": "The toxicity gain (mean x100, points) that counts as one."}
    )
    max_relevance_drop: float = field(
        default=1.0, metadata={"help": "Stop once validation ROUGE-L falls this many points below its start."}
    )
    rewards: list[str] = field(
        default_factory=lambda: [rewards.ROUGE_L, rewards.NON_TOXICITY, rewards.LENGTH, rewards.NO_LEAKAGE],
        metadata={"help": f"Reward functions, some of {rewards.REWARD_NAMES}; weights: reward_weights."},
    )
    toxicity: str = field(
        default="profanity-check", metadata={"help": "Toxicity scorer: profanity-check, or a classifier ID[@REV]."}
    )
    embedding_model: str | None = field(
        default="dialoghub/all-MiniLM-L6-v2",
        metadata={"help": "Sentence-embedding model ID[@REV] of the semantic_similarity reward."},
    )
    push: bool = field(default=False, metadata={"help": "Publish the adapter with its card to hub_model_id."})
    release_tag: str | None = field(default=None, metadata={"help": "Tag of the published revision, e.g. v1.0."})
    skip_if_released: bool = field(
        default=False, metadata={"help": "Train nothing when hub_model_id already has release_tag."}
    )
    refresh_card: bool = field(
        default=False,
        metadata={
            "help": "Train nothing: re-render the released adapter's card (before/after table, model-index) from "
            "the results repo's records of it and of its SFT parent."
        },
    )
    results_repo: str | None = field(
        default=None, metadata={"help": "Results repo read by refresh_card (none: <org>/dialoghub-results)."}
    )
    license: str = field(default="apache-2.0", metadata={"help": "License of the published adapter."})


def parser(description: str | None = None):
    return trainer_parser(RewardScriptArguments, RewardGRPOConfig, ModelConfig, description=description)


def parse_args(args: list[str] | None = None, description: str | None = None):
    """(script_args, training_args, model_args) from `--config recipe.yaml` and CLI overrides."""
    return parser(description).parse_args_and_config(args)


# ---------------------------------------------------------------------------------------------------------------
# Prompts


def grpo_rows(rows, kind: str):
    """trl prompt rows: the summarize prompt, and the columns the rewards read (`summaries`, `dialogue`)."""

    def convert(example: dict[str, Any]) -> dict[str, Any]:
        return {
            "prompt": prompts.summarize_messages(example["dialogue"], f"conversation {example['conversation_id']}"),
            "summaries": [" ".join(summary.split()) for summary in example["summaries"]],
            "dialogue": [{"role": turn["role"], "text": turn["text"]} for turn in example["dialogue"]],
            "conversation_id": example["conversation_id"],
            "provocation": example.get("provocation") or kind,
        }

    return rows.map(convert, remove_columns=rows.column_names, desc=f"{kind} prompts")


def load_prompts(script_args: RewardScriptArguments, seed: int):
    """The training prompts, train-split dialogs only, shuffled with `seed`; and the record of what was read."""
    if not 0 <= script_args.provocation_fraction <= 1:
        raise ValueError(f"provocation_fraction must be in [0, 1], got {script_args.provocation_fraction}")
    if script_args.dataset_train_split != "train":
        raise ValueError("reward-tuning prompts come from the train split only (dataset_train_split: train)")
    clean = resolve_repo(script_args.dataset_name, script_args.dataset_revision, repo_type="dataset")
    plain = load_dataset(clean.repo_id, script_args.dataset_config, split="train", revision=clean.sha)
    record: dict[str, Any] = {
        "dataset": {"id": clean.repo_id, "revision": script_args.dataset_revision, "sha": clean.sha}
    }
    abusive = None
    if script_args.provocation_dataset and script_args.provocation_fraction > 0:
        provocation = resolve_repo(script_args.provocation_dataset, repo_type="dataset")
        abusive = load_dataset(provocation.repo_id, split=script_args.provocation_split, revision=provocation.sha)
        if set(abusive["source_split"]) != {"train"}:
            raise ValueError(f"{provocation}: split {script_args.provocation_split!r} holds non-train dialogs")
        record["provocation_dataset"] = {
            "id": provocation.repo_id,
            "reference": script_args.provocation_dataset,
            "sha": provocation.sha,
            "split": script_args.provocation_split,
        }
        abusive = abusive.shuffle(seed=seed)
    plain = plain.shuffle(seed=seed)
    if script_args.full_data:
        n_abusive = len(abusive) if abusive is not None else 0
        share = script_args.provocation_fraction
        n_plain = len(plain) if abusive is None or share == 0 else round(n_abusive * (1 - share) / share)
    else:
        n_abusive = round(script_args.max_train_prompts * script_args.provocation_fraction) if abusive else 0
        n_plain = script_args.max_train_prompts - n_abusive
    parts = []
    if abusive is not None and n_abusive:
        parts.append(grpo_rows(abusive.select(range(min(n_abusive, len(abusive)))), "provocation"))
    taken = set(parts[0]["conversation_id"]) if parts else set()
    taken = {conversation_id.split("+")[0] for conversation_id in taken}
    # Other dialogs than the abusive prompts', so that the run sees as many dialogs as it has prompts
    plain = plain.filter(lambda row: row["conversation_id"] not in taken)
    if n_plain:
        parts.append(grpo_rows(plain.select(range(min(n_plain, len(plain)))), "plain"))
    if not parts:
        raise ValueError("no training prompts: raise max_train_prompts")
    dataset = concatenate_datasets(parts).shuffle(seed=seed)
    record["prompts"] = {
        kind: sum(value == kind for value in dataset["provocation"]) for kind in set(dataset["provocation"])
    }
    record["n_prompts"] = len(dataset)
    return dataset, record


def load_validation_rows(script_args: RewardScriptArguments) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """(abusive, plain) validation rows, never training prompts or test rows: the provocation dataset's
    `validation_split` (none without a provocation dataset) and tweetsumm-clean's validation split, each cut to
    `validation_prompts`; and their record."""
    limit = script_args.validation_prompts or None
    clean = resolve_repo(script_args.dataset_name, script_args.dataset_revision, repo_type="dataset")
    plain = load_dataset(clean.repo_id, script_args.dataset_config, split="validation", revision=clean.sha)
    abusive_rows = []
    if script_args.provocation_dataset:
        provocation = resolve_repo(script_args.provocation_dataset, repo_type="dataset")
        try:
            abusive = load_dataset(provocation.repo_id, split=script_args.validation_split, revision=provocation.sha)
        except ValueError as error:
            raise ValueError(
                f"{script_args.provocation_dataset} has no split {script_args.validation_split!r} ({error}); "
                f"tweetsumm-provocation has a validation split from {PROVOCATION_RELEASE} on"
            ) from error
        if set(abusive["source_split"]) != {"validation"}:
            raise ValueError(f"{provocation}: split {script_args.validation_split!r} holds non-validation dialogs")
        abusive_rows = abusive.to_list()[:limit]
    plain_rows = plain.to_list()[:limit]
    record = {"split": script_args.validation_split, "provocation": len(abusive_rows), "plain": len(plain_rows)}
    return abusive_rows, plain_rows, record


def widget_examples(abusive_rows: list[dict], plain_rows: list[dict]) -> list[dict[str, Any]]:
    """The card's widget: the first plain and the first abusive validation dialog, as the summarize prompt."""
    return [
        {
            "conversation_id": row["conversation_id"],
            "messages": prompts.summarize_messages(row["dialogue"], f"conversation {row['conversation_id']}"),
        }
        for row in (plain_rows[:1] + abusive_rows[:1])
    ]


# ---------------------------------------------------------------------------------------------------------------
# Policy, rewards, trainer


def resolved_base(script_args: RewardScriptArguments, model_args: ModelConfig):
    """(SFT adapter, base model) as `ResolvedRepo`s: the base is the adapter's own unless model_name_or_path says."""
    adapter = resolve_repo(script_args.sft_adapter)
    base_id, base_revision = adapter_base(adapter)
    if model_args.model_name_or_path:
        base_id, base_revision = model_args.model_name_or_path, model_args.model_revision
    return adapter, resolve_repo(base_id, base_revision)


def load_policy(adapter, base, model_args: ModelConfig, use_cpu: bool = True):
    """The base at its commit, in `resolve_dtype(model_args.dtype)`, with the SFT adapter loaded trainable; with
    `load_in_4bit`, quantized as the recipe says (trl's `get_quantization_config`: NF4, double quantization, storage
    dtype), as the SFT recipe quantized it, each process holding a whole copy on its own device (ZeRO-3's zero.Init
    skips quantized models)."""
    if model_args.load_in_8bit:
        raise ValueError("reward tuning quantizes with load_in_4bit; load_in_8bit is not supported")
    quantization = None
    if model_args.load_in_4bit:
        # bitsandbytes computes in a named dtype ("auto" would be the checkpoint's): bfloat16 unless the recipe says
        compute = resolve_dtype(model_args.dtype, "cpu" if use_cpu else "cuda")
        compute = compute if compute not in (None, AUTO) else "bfloat16"
        quantization = get_quantization_config(dataclasses.replace(model_args, dtype=compute))
    loaded = load_model(
        base,
        adapter,
        dtype=model_args.dtype,
        trainable=True,
        attn_implementation=model_args.attn_implementation,
        target_device="cpu" if use_cpu else f"cuda:{PartialState().local_process_index}",
        load_in_4bit=model_args.load_in_4bit,
        quantization_config=quantization,
    )
    return loaded.model, loaded.dtype


def load_reward_scorers(script_args: RewardScriptArguments) -> tuple[dict[str, Any], dict[str, Any]]:
    """The scoring models the chosen rewards need, at resolved revisions, and their record."""
    scorers: dict[str, Any] = {}
    record: dict[str, Any] = {}
    if rewards.NON_TOXICITY in script_args.rewards:
        scorers["toxicity_scorer"], record["toxicity"] = load_toxicity(script_args.toxicity)
    if rewards.SEMANTIC_SIMILARITY in script_args.rewards:
        if not script_args.embedding_model:
            raise ValueError("the semantic_similarity reward needs embedding_model")
        scorers["semantic_similarity"], record["semantic_similarity"] = load_semantic_similarity(
            script_args.embedding_model
        )
    return scorers, record


def check_reference_is_the_sft_policy(trainer: GRPOTrainer) -> None:
    """Freeze trl's `ref` adapter (a copy of the SFT adapter) and check that only the SFT adapter's LoRA matrices
    are trainable, before the optimizer is built from the trainable parameters."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if trainer.beta != 0.0 and REFERENCE_ADAPTER not in getattr(model, "peft_config", {}):
        raise RuntimeError(
            "trl did not create the frozen reference copy of the SFT adapter: the KL would be taken against the "
            "bare base model. This trl version is not supported; see dialoghub/reward/training.py"
        )
    for name, parameter in model.named_parameters():
        if f".{REFERENCE_ADAPTER}." in name:
            parameter.requires_grad_(False)
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    wrong = [name for name in trainable if "lora_" not in name or f".{SFT_ADAPTER}." not in name]
    if wrong or not trainable:
        raise RuntimeError(f"only the SFT adapter's LoRA parameters may train; trainable: {wrong[:5] or 'none'}")


def build_trainer(
    script_args,
    training_args: GRPOConfig,
    model_args: ModelConfig,
    train_dataset,
    callbacks=None,
    reward_functions: list | None = None,
):
    """The GRPO trainer of the SFT policy, its reward functions (built from the recipe's `rewards` unless given), and
    the run's provenance record."""
    if training_args.use_vllm and (model_args.load_in_4bit or model_args.load_in_8bit):
        # trl's vLLM weight sync merges the adapter into the quantized layers and sends vLLM tensors of the wrong shape
        # (huggingface/trl#4973, open against trl 1.x); generate with transformers, or drop load_in_4bit for vLLM
        raise ValueError("use_vllm with a quantized base is not supported by trl (trl#4973): set one of them false")
    adapter, base = resolved_base(script_args, model_args)
    policy, dtype = load_policy(adapter, base, model_args, training_args.use_cpu)
    tokenizer = load_tokenizer(base.repo_id, base.load_revision, padding_side="left")
    scorers_record = {"custom": [function.__name__ for function in reward_functions]} if reward_functions else None
    if reward_functions is None:
        scorers, scorers_record = load_reward_scorers(script_args)
        reward_functions = rewards.build_rewards(script_args.rewards, **scorers)
    if training_args.reward_weights is not None and len(training_args.reward_weights) != len(reward_functions):
        raise ValueError(
            f"{len(training_args.reward_weights)} reward_weights for {len(reward_functions)} rewards "
            f"({script_args.rewards})"
        )
    # share_prompt (off by default): the same step computed with each prompt once (dialoghub/reward/trainer.py)
    trainer_class = SharedPromptGRPOTrainer if getattr(training_args, "share_prompt", False) else GRPOTrainer
    trainer = trainer_class(
        model=policy,
        reward_funcs=reward_functions,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    check_reference_is_the_sft_policy(trainer)
    record = {
        "sft_adapter": {"id": adapter.repo_id, "revision": adapter.revision, "sha": adapter.sha},
        "base_model": {"id": base.repo_id, "revision": base.revision, "sha": base.sha},
        "dtype": dtype,
        "scorers": scorers_record,
    }
    return trainer, reward_functions, record


# ---------------------------------------------------------------------------------------------------------------
# Outputs


def logged(trainer, key: str) -> list[tuple[int, float]]:
    return [(entry["step"], entry[key]) for entry in trainer.state.log_history if key in entry]


def plot_validation_curve(points: list[dict[str, float]], path: Path) -> Path:
    """Validation toxicity and ROUGE-L against optimizer steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [point["step"] for point in points]
    figure, (toxicity_axis, relevance_axis) = plt.subplots(1, 2, figsize=(10, 4))
    toxicity_axis.plot(steps, [point["toxicity"] for point in points], marker="o", color="#c62828")
    toxicity_axis.set_xlabel("optimizer step")
    toxicity_axis.set_ylabel("mean toxicity x100, provocation validation")
    toxicity_axis.grid(alpha=0.3)
    relevance_axis.plot(steps, [point["rouge_l"] for point in points], marker="o", color="#1565c0")
    relevance_axis.set_xlabel("optimizer step")
    relevance_axis.set_ylabel("ROUGE-L (jackknife), validation")
    relevance_axis.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path, dpi=100, metadata={"Software": None})


def plot_reward_curve(trainer, reward_names: list[str], path: Path) -> Path:
    """Each reward's mean and the KL to the SFT policy per logging step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rewards_axis, kl_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for name in reward_names:
        if points := logged(trainer, f"rewards/{name}/mean"):
            rewards_axis.plot(*zip(*points, strict=True), label=name)
    rewards_axis.set_xlabel("optimizer step")
    rewards_axis.set_ylabel("mean reward")
    rewards_axis.legend(fontsize=8)
    rewards_axis.grid(alpha=0.3)
    if points := logged(trainer, "kl"):
        kl_axis.plot(*zip(*points, strict=True), color="#ef6c00")
    kl_axis.set_xlabel("optimizer step")
    kl_axis.set_ylabel("KL to the SFT policy (per token)")
    kl_axis.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path, dpi=100, metadata={"Software": None})


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def training_summary(script_args, training_args: GRPOConfig, model_args, trainer, record: dict) -> dict[str, Any]:
    """Everything the card needs, written beside the adapter as training_summary.json."""
    reward_names = [function.__name__ for function in trainer.reward_funcs]
    weights = training_args.reward_weights or [1.0] * len(reward_names)
    reward_means = {}
    for name in reward_names:
        points = [value for _, value in logged(trainer, f"rewards/{name}/mean")]
        reward_means[name] = {"first": points[0] if points else None, "last": points[-1] if points else None}
    kl = [value for _, value in logged(trainer, "kl")]
    peft_config = trainer.accelerator.unwrap_model(trainer.model).peft_config[SFT_ADAPTER]
    return {
        "task": prompts.SUMMARIZE,
        "method": "grpo",
        "prompt_version": prompts.PROMPT_VERSION,
        "license": script_args.license,
        **record,
        "rewards": [{"name": name, "weight": weight} for name, weight in zip(reward_names, weights, strict=True)],
        "reward_means": reward_means,
        "beta": training_args.beta,
        "kl": {"first": kl[0] if kl else None, "last": kl[-1] if kl else None, "mean": _mean(kl)},
        "global_step": trainer.state.global_step,
        "train_runtime_s": next((e["train_runtime"] for e in trainer.state.log_history if "train_runtime" in e), None),
        "hyperparameters": {
            "learning_rate": training_args.learning_rate,
            "lr_scheduler_type": getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type),
            "max_steps": training_args.max_steps,
            "num_train_epochs": training_args.num_train_epochs,
            "per_device_train_batch_size": training_args.per_device_train_batch_size,
            "gradient_accumulation_steps": training_args.gradient_accumulation_steps,
            "num_generations": training_args.num_generations,
            "max_completion_length": training_args.max_completion_length,
            "temperature": training_args.temperature,
            "loss_type": training_args.loss_type,
            "scale_rewards": training_args.scale_rewards,
            "num_iterations": training_args.num_iterations,
            "epsilon": training_args.epsilon,
            "seed": training_args.seed,
            "lora_r": peft_config.r,
            "lora_alpha": peft_config.lora_alpha,
            "lora_target_modules": sorted(peft_config.target_modules)
            if isinstance(peft_config.target_modules, set)
            else peft_config.target_modules,
            "dtype": record["dtype"],
        },
        "framework_versions": package_versions(("torch", "transformers", "trl", "peft", "datasets")),
    }


def save_adapter(trainer, tokenizer, output_dir: Path) -> None:
    """The trained SFT adapter only (`default`, loadable as the repo's root adapter), not trl's reference copy.

    Called on every rank: under DeepSpeed ZeRO-3 (and FSDP) the parameters are partitioned, and the unwrapped model's
    own state dict holds empty shards; `Accelerator.get_state_dict` of the prepared model (the DeepSpeed engine)
    gathers them, a collective every rank joins. Only the main process writes.
    """
    engine = trainer.model_wrapped
    if trainer.is_deepspeed_enabled and trainer.accelerator.deepspeed_config["zero_optimization"]["stage"] == 3:
        # As `Trainer.save_model` does for PEFT under ZeRO-3: gather the trainable (LoRA) parameters only
        state_dict = engine._zero3_consolidated_16bit_state_dict(exclude_frozen_parameters=True)
    else:
        state_dict = trainer.accelerator.get_state_dict(engine)
    if trainer.args.should_save:
        model = trainer.accelerator.unwrap_model(trainer.model)
        model.save_pretrained(str(output_dir), selected_adapters=[SFT_ADAPTER], state_dict=state_dict)
        tokenizer.save_pretrained(str(output_dir))


def train(script_args, training_args: GRPOConfig, model_args: ModelConfig, callbacks=None, reward_functions=None):
    """Reward-tune and save the adapter, tokenizer, reward curve and training summary to output_dir; the script
    publishes them (`dialoghub.reward.card.push_reward_adapter`). Returns the trainer."""
    if script_args.push and not (training_args.hub_model_id and script_args.release_tag):
        raise ValueError("--push needs hub_model_id and release_tag")
    train_dataset, data_record = load_prompts(script_args, training_args.seed)
    abusive_rows, plain_rows, data_record["validation"] = load_validation_rows(script_args)
    trainer, reward_functions, record = build_trainer(
        script_args, training_args, model_args, train_dataset, callbacks, reward_functions
    )
    curve = None
    if script_args.validation_every:
        scorer, _ = load_toxicity(script_args.toxicity)
        curve = ValidationCurve(
            tokenizer=trainer.processing_class,
            base=resolved_base(script_args, model_args)[1],
            provocation_rows=abusive_rows,
            plain_rows=plain_rows,
            toxicity_scorer=scorer,
            every=script_args.validation_every,
            patience=script_args.early_stopping_patience,
            min_improvement=script_args.early_stopping_min_improvement,
            max_relevance_drop=script_args.max_relevance_drop,
        )
        trainer.add_callback(curve)
    trainer.train()
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_adapter(trainer, trainer.processing_class, output_dir)  # every rank: a gather under ZeRO-3
    if trainer.is_world_process_zero():
        plot_reward_curve(trainer, [f.__name__ for f in trainer.reward_funcs], output_dir / REWARD_CURVE_FILE)
        extra = {"widget": widget_examples(abusive_rows, plain_rows)}
        if curve is not None:
            extra["validation_curve"] = curve.record()
            plot_validation_curve(extra["validation_curve"]["points"], output_dir / VALIDATION_CURVE_FILE)
        summary = training_summary(script_args, training_args, model_args, trainer, record | data_record | extra)
        write_summary(output_dir, summary)
    return trainer
