"""An exact speed-up of trl's GRPO step: each prompt computed once for all its completions (`share_prompt`).

trl scores a batch as one row per completion, prompt + completion, so a prompt with `num_generations` completions is
run through the model `num_generations` times in the reference pass and in the policy's forward and backward. With
`share_prompt`, `SharedPromptGRPOTrainer` packs each prompt's completions behind one copy of the prompt, as the SFT
trainer packs a dialog's reference summaries (`dialoghub.sft.trainer.shared_prefix_example`): each completion sees
the prompt and itself, never a sibling (`varlen_sdpa_attention`), at the positions it has alone after the prompt. The
per-token log-probabilities and entropies come back in trl's (completions, completion length) layout, so trl's loss,
KL, clipping and logging run unchanged on the same numbers. The LM head projects only the completion positions
(`restrict_lm_head_to_labels`; on CPU, trl's fused head projects every position, prompt included).

With `share_prompt` on, and when the step's gradient cannot depend on how a generation batch is cut into
micro-batches (`regroups_micro_batches`), the micro-batches hold whole prompt groups instead of trl's random cut, so
that a prompt is shared by all its completions in the policy pass too. tests/test_grpo_speed.py checks log-probs,
loss, KL and gradients against trl's plain computation on the same batch.

Generation computes each prompt once too (`generate_with_shared_prompts`): the distinct prompts of a generation batch
fill one cache, copied to their `num_generations` rows, and transformers' `generate` samples from there with trl's
settings, so each token is drawn from the logits the whole row gives it, up to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import split_tensor_dict

from dialoghub.sft.trainer import (
    LOGIT_TRANSFORMS,
    VARLEN_SDPA,
    SharedPrefixCollator,
    restrict_lm_head_to_labels,
    shared_prefix_example,
)

# Loss types whose optimizer step is a sum over completions divided by a normalizer that does not depend on how the
# generation batch is cut into (equal) micro-batches; "bnpo" divides by each micro-batch's own token count, "vespo"
# and the entropy options weigh a micro-batch by statistics of the micro-batch.
PARTITION_FREE_LOSSES = ("grpo", "dr_grpo", "dapo", "cispo", "luspo")
# The per-completion fields of `_generate_and_score_completions`' output that regrouping knows how to reorder
ROW_FIELDS = {
    "prompt_ids",
    "prompt_mask",
    "completion_ids",
    "completion_mask",
    "advantages",
    "old_per_token_logps",
    "importance_sampling_ratio",
    "sampling_per_token_logps",
    "ref_per_token_logps",
    "tool_mask",
}


@dataclass
class RewardGRPOConfig(GRPOConfig):
    """trl's `GRPOConfig` plus the exact speed-up of `SharedPromptGRPOTrainer`."""

    share_prompt: bool = field(
        default=False,
        metadata={
            "help": "Compute each prompt once for all its completions in the reference and policy passes (one "
            "sequence per prompt, each completion attending to the prompt and itself), and group the policy's "
            "micro-batches by prompt where that leaves the step's gradient unchanged. The same loss, KL and "
            "gradients as trl's one row per completion (dialoghub/reward/trainer.py)."
        },
    )


def prompt_groups(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> list[tuple[list[int], list[int]]]:
    """(prompt tokens, the rows that have that prompt) for each distinct prompt, in order of first appearance."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for row, (ids, mask) in enumerate(zip(prompt_ids.tolist(), prompt_mask.tolist(), strict=True)):
        groups.setdefault(tuple(token for token, keep in zip(ids, mask, strict=True) if keep), []).append(row)
    return [(list(prompt), rows) for prompt, rows in groups.items()]


def is_prefix_mask(mask: torch.Tensor) -> bool:
    """Whether every row of a 0/1 mask is ones then zeros (trl's right-padded completions)."""
    return bool((mask == mask.cummin(dim=1).values).all())


def shared_prompt_batch(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, completion_length: int, pad_token_id: int
) -> tuple[dict[str, Any], torch.Tensor]:
    """trl's rows (left-padded prompt + right-padded completion) as one padding-free row of shared-prompt sequences
    (`SharedPrefixCollator`), and for each completion token kept by the mask, in row-major order, the position of the
    model's shifted log-prob row that scores it."""
    prompt_ids, prompt_mask = input_ids[:, :-completion_length], attention_mask[:, :-completion_length]
    completion_ids, completion_mask = input_ids[:, -completion_length:], attention_mask[:, -completion_length:]
    completions = [ids[mask.bool()].tolist() for ids, mask in zip(completion_ids, completion_mask, strict=True)]
    first_scored = [0] * len(completions)
    examples, offset = [], 0
    for prompt, rows in prompt_groups(prompt_ids, prompt_mask):
        if not prompt:
            raise ValueError("share_prompt: an empty prompt has no token to predict its completion from")
        example = shared_prefix_example(prompt, [completions[row] for row in rows])
        # Each completion's first token is scored from its segment's head, the prompt's last token (a single
        # completion: that token in the plain sequence), which follows the shared part; later ones one by one
        head = offset + len(prompt) - 1
        for row in rows:
            first_scored[row] = head
            head += 1 + len(completions[row])
        offset += len(example["input_ids"])
        examples.append(example)
    batch = SharedPrefixCollator(pad_token_id)(examples)
    scored = [first_scored[row] + index for row, tokens in enumerate(completions) for index in range(len(tokens))]
    return batch, torch.tensor(scored, dtype=torch.long)


def unpack(per_position: torch.Tensor, scored: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """The packed row's values at `scored`, in trl's (completions, completion length) layout, zero where masked
    (as trl's fused head gives them)."""
    mask = completion_mask.bool()
    values = per_position[0, scored.to(per_position.device)]
    # `masked_scatter`, as trl's head: connected to the model (a differentiable zero) even when nothing is scored
    return per_position.new_zeros(mask.shape).masked_scatter(mask.to(per_position.device), values)


def has_active_dropout(model: torch.nn.Module) -> bool:
    return model.training and any(isinstance(module, torch.nn.Dropout) and module.p > 0 for module in model.modules())


def generate_with_shared_prompts(
    model, generate: Callable[..., torch.Tensor], input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs
) -> torch.Tensor:
    """`generate(input_ids=..., attention_mask=..., **kwargs)` of left-padded rows in which prompts repeat (GRPO's
    `num_generations` copies), with each distinct prompt run through `model` once: its cache of all but the last
    token is copied to each of its rows, and `generate` goes on from there with the same sampling calls. Only the
    last prompt token is computed apart, as in any cached decoding, so the logits equal the whole row's up to float
    rounding, and a near-tie may sample differently (tests/test_grpo_speed.py)."""
    rows = torch.stack([input_ids, attention_mask.to(input_ids.dtype)], dim=-1).flatten(1)
    distinct, copies = torch.unique(rows, dim=0, return_inverse=True)
    # A prompt of one token leaves nothing to compute ahead (and an all-padding row to attend over)
    if len(distinct) == len(rows) or input_ids.size(1) < 2 or not attention_mask[:, -2].all():
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    distinct_ids, distinct_mask = (part.contiguous() for part in distinct.view(len(distinct), -1, 2).unbind(-1))
    distinct_mask = distinct_mask.to(attention_mask.dtype)
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(
            input_ids=distinct_ids[:, :-1],
            attention_mask=distinct_mask[:, :-1],
            position_ids=left_padded_positions(distinct_mask)[:, :-1],
            past_key_values=cache,
            use_cache=True,
        )
    cache.batch_select_indices(copies)
    # Given explicitly: `generate` infers them only for a forward whose signature names them, and a restricted LM
    # head's wrapper (`restrict_lm_head_to_labels`) does not; the cache above holds these positions
    positions = left_padded_positions(attention_mask)
    return generate(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, past_key_values=cache, **kwargs
    )


def left_padded_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """The positions `generate` gives left-padded rows (`GenerationMixin._prepare_position_ids_for_generation`)."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)


@contextmanager
def prompts_computed_once(model) -> Iterator[None]:
    """Inside the block, `model.generate` computes each distinct prompt of its batch once
    (`generate_with_shared_prompts`); trl's sampling code calls it unchanged."""
    generate = model.generate
    model.generate = lambda input_ids, attention_mask, **kwargs: generate_with_shared_prompts(
        model, generate, input_ids, attention_mask, **kwargs
    )
    try:
        yield
    finally:
        del model.generate  # the instance attribute set above; the class's method shows through again


@contextmanager
def attention_implementation(model, implementation: str) -> Iterator[None]:
    """`model` (a PreTrainedModel) computes attention with `implementation` inside the block."""
    previous = model.config._attn_implementation
    model.set_attn_implementation(implementation)
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


class SharedPromptGRPOTrainer(GRPOTrainer):
    """`GRPOTrainer` whose per-token log-probabilities (policy, old policy and reference) come from shared-prompt
    sequences when `args.share_prompt`; without it, or for inputs it does not handle (images, MoE auxiliary loss),
    trl's own computation. See the module docstring."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.share_prompt = getattr(self.args, "share_prompt", False)
        self.generation_attention = self._pretrained(self.model).config._attn_implementation
        if not self.share_prompt:
            return
        for model in (self.model, self.ref_model):
            if model is None:
                continue
            base = self._pretrained(model)
            # For good, not around the packed forward only: gradient checkpointing recomputes that forward during
            # backward. Generation gets the model's own back (`_generate`).
            base.set_attn_implementation(VARLEN_SDPA)
            config = base.config.get_text_config()
            if not self.args.cast_lm_head_to_fp32 and all(getattr(config, n, None) is None for n in LOGIT_TRANSFORMS):
                # The same kernel as trl's fused head, on the completion positions only
                restrict_lm_head_to_labels(base, temperature=self.temperature)

    def _pretrained(self, model):
        """The PreTrainedModel inside `model` (accelerate's and PEFT's wrappers removed)."""
        model = self.accelerator.unwrap_model(model)
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    @property
    def regroups_micro_batches(self) -> bool:
        """Whether cutting a generation batch into micro-batches by prompt leaves the optimizer step unchanged: one
        policy for the whole generation batch (no `num_iterations` reuse, whole generation batches per step) and a
        loss that sums over completions with a fixed normalizer."""
        args = self.args
        return (
            self.share_prompt
            and self.num_iterations == 1
            and args.gradient_accumulation_steps % args.steps_per_generation == 0
            and self.loss_type in PARTITION_FREE_LOSSES
            and self.top_entropy_quantile == 1.0
            and not self._entropy_bonus_enabled
        )

    def _generate(self, prompts):
        # The model's own attention (flash on GPUs; one that transformers' continuous batching accepts)
        if not self.share_prompt:
            return super()._generate(prompts)
        with attention_implementation(self._pretrained(self.model), self.generation_attention):
            return super()._generate(prompts)

    def shares_generation_prompts(self, images, multimodal_fields) -> bool:
        """Whether transformers' `generate` may compute each prompt once for its completions: text-only prompts,
        a dynamic cache, and no dropout that would draw one mask per copy of a prompt."""
        unwrapped = self.accelerator.unwrap_model(self.model_wrapped)
        return (
            self.share_prompt
            and not self.use_vllm
            and not self.use_transformers_continuous_batching
            and images is None
            and not multimodal_fields
            and self.generation_config.cache_implementation is None
            and not has_active_dropout(unwrapped)
            and "generate" not in vars(unwrapped)
        )

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        arguments = (prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        if not self.shares_generation_prompts(images, multimodal_fields):
            return super()._generate_single_turn(*arguments)
        # trl generates through `accelerator.unwrap_model(model_wrapped)` (`unwrap_model_for_generation`)
        with prompts_computed_once(self.accelerator.unwrap_model(self.model_wrapped)):
            return super()._generate_single_turn(*arguments)

    def _prepare_inputs(self, generation_batch):
        if not (self.model.training and self.regroups_micro_batches):
            return super()._prepare_inputs(generation_batch)
        generate_every = self.args.steps_per_generation * self.num_iterations
        fresh = self._step % generate_every == 0 or self._buffered_inputs is None
        inputs = super()._prepare_inputs(generation_batch)
        if fresh and set(self._buffered_inputs[0]) - {"num_items_in_batch"} <= ROW_FIELDS:
            self._buffered_inputs = group_micro_batches(self._buffered_inputs)
            inputs = self._buffered_inputs[self._step % self.args.steps_per_generation]
        return inputs

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        **multimodal,
    ):
        completion_mask = attention_mask[:, -logits_to_keep:]
        # Left-padded prompts and right-padded completions, as trl builds them: the only layout packed here
        handled = (
            self.share_prompt
            and not compute_aux_loss
            and all(value is None for value in multimodal.values())
            and is_prefix_mask(completion_mask)
            and is_prefix_mask(attention_mask[:, :-logits_to_keep].flip(1))
        )
        if not handled:
            return super()._get_per_token_logps_and_entropies(
                model,
                input_ids,
                attention_mask,
                logits_to_keep,
                batch_size=batch_size,
                compute_entropy=compute_entropy,
                compute_aux_loss=compute_aux_loss,
                **multimodal,
            )
        batch_size = batch_size or input_ids.size(0)  # trl's chunks, for the same memory peak
        all_logps, all_entropies = [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            logps, entropies = self.shared_prompt_logps(
                model, input_ids[start:end], attention_mask[start:end], logits_to_keep
            )
            all_logps.append(logps)
            all_entropies.append(entropies)
        return torch.cat(all_logps), torch.cat(all_entropies) if compute_entropy else None, None

    def shared_prompt_logps(
        self, model, input_ids, attention_mask, logits_to_keep, batch_transform=None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-token log-probs and entropies of the completions of trl's rows `input_ids`, computed from shared-prompt
        sequences (`batch_transform`, for tests, may alter the packed batch before the forward)."""
        batch, scored = shared_prompt_batch(input_ids, attention_mask, logits_to_keep, self._tokenizer.pad_token_id)
        if batch_transform is not None:
            batch = batch_transform(batch)
        device = input_ids.device
        batch = {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
        with self.accelerator.autocast():
            outputs = model(**batch, fused_lm_head=True)
        completion_mask = attention_mask[:, -logits_to_keep:]
        # trl's head for a separate reference model computes no entropy (one not restricted here gives None)
        entropy = outputs.entropy
        return (
            unpack(outputs.log_probs, scored, completion_mask),
            unpack(entropy, scored, completion_mask) if entropy is not None else None,
        )


def group_micro_batches(micro_batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """trl's micro-batches of one generation batch (cut after a random shuffle), re-cut into as many of the same size
    with each prompt's completions together: the same completions, in the order in which their prompts first appear
    in trl's shuffle."""
    whole: dict[str, Any] = {}
    for key, first in micro_batches[0].items():
        if first is None or (isinstance(first, torch.Tensor) and first.ndim == 0):
            whole[key] = first  # num_items_in_batch: the generation batch's, shared by its micro-batches
        else:
            whole[key] = torch.cat([batch[key] for batch in micro_batches])
    order = [row for _, rows in prompt_groups(whole["prompt_ids"], whole["prompt_mask"]) for row in rows]
    order = torch.tensor(order, device=whole["prompt_ids"].device)
    for key in ROW_FIELDS & whole.keys():
        if whole[key] is not None:
            whole[key] = whole[key][order]
    return split_tensor_dict(whole, len(micro_batches))
