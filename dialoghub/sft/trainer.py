"""The exact speed-ups of `AdapterSFTTrainer`: padding-free attention per sequence and an LM head restricted to the
completion positions. Importing this module registers the `dialoghub_varlen_sdpa` attention implementation with
transformers.

Both change how the loss is computed, not what it is: tests/test_training_speed.py checks the loss and gradients
against plain `SFTTrainer` on the same batch, and `benchmarks/train_bench.py` measures the gain.
"""

from __future__ import annotations

import types
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch.distributed.tensor import DTensor
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from trl import SFTTrainer
from trl.kernels import ChunkedLogProbFunction
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
from trl.trainer.utils import FusedCausalLMOutput, maybe_gather_lm_head_ctx

# Vocabulary columns per LM-head tile, as trl's fused head uses
LM_HEAD_CHUNK_SIZE = 32768
# Config fields by which some model families scale or cap their logits (as trl's fused head reads them); Llama has none
LOGIT_TRANSFORMS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
)


VARLEN_SDPA = "dialoghub_varlen_sdpa"


def varlen_sdpa_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Causal attention within each sequence of a padding-free batch, one `scaled_dot_product_attention` call per
    sequence (the `cu_seq_lens_q` boundaries that the collators send). A sequence that `SharedPrefixCollator` built
    from several completions of one prompt comes with its segment lengths in `shared_prefix_segments`. On a batch
    that is not padding-free it is plain sdpa with its mask.

    Plain sdpa would attend over the whole concatenated row under a block-diagonal mask: the cost of attention
    grows with the square of the batch's total length instead of the sum of squares of its sequences' lengths,
    which on CPU costs more than the padding saves. (On GPUs, flash-attention's varlen kernel does this.)
    """
    boundaries = kwargs.get("cu_seq_lens_q")
    if boundaries is None or query.shape[0] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    boundaries = boundaries.tolist()
    layouts = kwargs.get(SHARED_PREFIX_SEGMENTS) or [None] * (len(boundaries) - 1)
    gqa = query.shape[1] != key.shape[1]

    def attend(queries: slice, keys: list[slice], mask: torch.Tensor | None = None) -> torch.Tensor:
        key_part = torch.cat([key[:, :, part] for part in keys], dim=2) if len(keys) > 1 else key[:, :, keys[0]]
        value_part = torch.cat([value[:, :, part] for part in keys], dim=2) if len(keys) > 1 else value[:, :, keys[0]]
        return torch.nn.functional.scaled_dot_product_attention(
            query[:, :, queries], key_part, value_part, attn_mask=mask, dropout_p=dropout, scale=scaling,
            is_causal=mask is None, enable_gqa=gqa,
        )  # fmt: skip

    outputs = []
    for start, end, segments in zip(boundaries[:-1], boundaries[1:], layouts, strict=True):
        if segments is None or len(segments) == 1:
            outputs.append(attend(slice(start, end), [slice(start, end)]))
            continue
        # A shared-prompt sequence: the shared part attends causally to itself, each segment to the shared part and
        # causally to itself, never to a sibling segment (see shared_prefix_example)
        shared = slice(start, start + segments[0])
        outputs.append(attend(shared, [shared]))
        offset = shared.stop
        for length in segments[1:]:
            segment = slice(offset, offset + length)
            causal = torch.ones(length, length, dtype=torch.bool, device=query.device).tril()
            mask = torch.cat([causal.new_ones(length, segments[0]), causal], dim=1)
            outputs.append(attend(segment, [shared, segment], mask))
            offset += length
    return torch.cat(outputs, dim=2).transpose(1, 2).contiguous(), None


AttentionInterface.register(VARLEN_SDPA, varlen_sdpa_attention)
AttentionMaskInterface.register(VARLEN_SDPA, sdpa_mask)

SHARED_PREFIX_SEGMENTS = "shared_prefix_segments"
SEGMENT_LENGTHS = "segment_lengths"


def shared_prefix_example(prompt_ids: list[int], completions_ids: list[list[int]]) -> dict[str, list[int]]:
    """One training sequence for several completions of one prompt, the prompt's tokens computed once.

    The prompt's last token is repeated at the head of each completion's segment, at the same position id, so that
    its hidden state (the one that predicts the completion's first token) is computed for each completion; the
    shared part is the prompt without its last token. With the attention `varlen_sdpa_attention` gives such a
    sequence (each segment sees the shared part and itself, never a sibling), every completion token gets the logits
    it would get in the sequence prompt + completion alone: K references cost P + sum(len) tokens instead of
    K * P + sum(len).
    `segment_lengths` is [shared, segment 1, ...]; a single completion is the plain sequence.
    """
    if len(completions_ids) == 1:
        ids = prompt_ids + completions_ids[0]
        return {
            "input_ids": ids,
            "labels": [-100] * len(prompt_ids) + completions_ids[0],
            SEGMENT_LENGTHS: [len(ids)],
        }
    *shared, head = prompt_ids
    input_ids, labels, lengths = list(shared), [-100] * len(shared), [len(shared)]
    for completion in completions_ids:
        input_ids += [head, *completion]
        labels += [-100, *completion]
        lengths.append(1 + len(completion))
    return {"input_ids": input_ids, "labels": labels, SEGMENT_LENGTHS: lengths}


def shared_prefix_positions(segment_lengths: list[int]) -> torch.Tensor:
    """Position ids of one `shared_prefix_example` sequence: each segment continues from the shared part."""
    shared, *segments = segment_lengths
    return torch.cat([torch.arange(shared)] + [torch.arange(shared, shared + length) for length in segments])


@dataclass
class SharedPrefixCollator:
    """Padding-free batches of `shared_prefix_example` sequences: one row, the boundaries in `cu_seq_lens_q/k` as
    trl's padding-free collator sends them, and each sequence's segment lengths for `varlen_sdpa_attention`."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        lengths = torch.tensor([len(example["input_ids"]) for example in examples])
        boundaries = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]).to(torch.int32)
        return {
            "input_ids": torch.tensor([id_ for example in examples for id_ in example["input_ids"]])[None],
            "labels": torch.tensor([label for example in examples for label in example["labels"]])[None],
            "position_ids": torch.cat([shared_prefix_positions(example[SEGMENT_LENGTHS]) for example in examples])[
                None
            ],
            "cu_seq_lens_q": boundaries,
            "cu_seq_lens_k": boundaries,
            "max_length_q": int(lengths.max()),
            "max_length_k": int(lengths.max()),
            SHARED_PREFIX_SEGMENTS: [list(example[SEGMENT_LENGTHS]) for example in examples],
        }


def has_varlen_kernel(attn_implementation: str | None) -> bool:
    """Whether an attention implementation runs padding-free batches by itself from their `cu_seq_lens_q`
    boundaries, as flash-attention's varlen kernels do (`flash_attention_2`, `flash_attention_3`, hub kernels)."""
    return "flash" in (attn_implementation or "")


class AdapterSFTTrainer(SFTTrainer):
    """`SFTTrainer` with padding-free batches and an LM head restricted to the completion, both optional (see
    `AdapterSFTConfig`). The loss is the same function of the same batches: tests/test_training_speed.py checks it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Sequences encoded here (`segment_lengths`): with one segment each, plain sequences any collator batches;
        # with several, shared-prompt sequences whose masks only `varlen_sdpa_attention` builds.
        encoded = SEGMENT_LENGTHS in (self.train_dataset.column_names or [])
        shared_prefix = encoded and any(len(lengths) > 1 for lengths in self.train_dataset[SEGMENT_LENGTHS])
        flatten = getattr(self.args, "flatten_batches", False)
        attention = self._base_model().config._attn_implementation
        if shared_prefix and (not flatten or has_varlen_kernel(attention)):
            raise ValueError(
                "Shared-prompt sequences (several segment_lengths) need flatten_batches and this module's attention, "
                f"not {attention}: encode them with one completion each (share_prompt with flatten_batches false)"
            )
        if flatten:
            # The dataset is truncated to max_length by now, during preparation: only the batching changes.
            pad_token_id = self._tokenizer.pad_token_id
            self.data_collator = (
                SharedPrefixCollator(pad_token_id)
                if shared_prefix
                else DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=True)
            )
            self.padding_free = True
            if not has_varlen_kernel(attention):
                # flash-attention's varlen kernel reads the collators' `cu_seq_lens_q` itself and stays: the
                # per-sequence sdpa loop (a host sync per layer for the boundaries) is for sdpa and eager only.
                self._base_model().set_attn_implementation(VARLEN_SDPA)
        if getattr(self.args, "completion_logits_only", False):
            restrict_lm_head_to_labels(self._base_model())

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        self._signature_columns = [*self._signature_columns, SEGMENT_LENGTHS]

    def _base_model(self):
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def end(self):
        """`Trainer.end` (trackers finished, process group destroyed), with the DDP wrapper released first.

        DDP's Reducer holds the process group and is freed with the GIL held. If freeing it is what destroys the
        group (because `destroy_process_group` already dropped the group's registry entry), the gloo destructor
        joins its worker threads while a worker that is still releasing the tensors of the last collective waits for
        the GIL: the rank hangs forever after training (seen under CPU load on the rank that finishes first). With
        the wrapper gone first, `destroy_process_group` destroys the group, and that path releases the GIL.
        """
        if self.model_wrapped is not self.model:
            ddp = isinstance(self.model_wrapped, torch.nn.parallel.DistributedDataParallel)
            wrapper = weakref.ref(self.model_wrapped)
            self.model_wrapped = self.model
            # Under DeepSpeed the Trainer keeps the engine (which is `model_wrapped`) as `self.deepspeed` too;
            # `free_memory` destroys the engine, and this last reference goes with it.
            self.deepspeed = None
            self.accelerator.free_memory()  # accelerate's references to the prepared model, and a garbage collection
            if ddp and wrapper() is not None:
                # Only DDP's Reducer holds the process group (the hang above); another wrapper may outlive this.
                raise RuntimeError(f"{type(wrapper()).__name__} is still referenced: the process group cannot go")
        super().end()


def restrict_lm_head_to_labels(model, temperature: float = 1.0) -> None:
    """Make `model(..., labels=..., fused_lm_head=True)` score only the positions whose label is not -100, the logits
    divided by `temperature` (as the fused head trl's GRPO installs divides them).

    It wraps the fused forward that `SFTTrainer` installs (`trl.trainer.utils.add_fused_lm_head`), returning the same
    outputs (per-token log-probabilities, entropy, top-1 flags, label mask) computed with the same kernel, on fewer
    rows. Other calls (generation, plain forward) go to the previous forward unchanged.
    """
    config = model.config.get_text_config()
    if any(getattr(config, name, None) is not None for name in LOGIT_TRANSFORMS):
        raise ValueError(f"{config.model_type}: completion_logits_only does not handle scaled or soft-capped logits")
    previous_forward = model.forward

    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        if not fused_lm_head or shift_labels is not None or getattr(config, "output_router_logits", False):
            return previous_forward(
                *args,
                fused_lm_head=fused_lm_head,
                labels=labels,
                shift_labels=shift_labels,
                num_items_in_batch=num_items_in_batch,
                **kwargs,
            )
        kwargs["use_cache"] = False
        hidden_states = self.base_model(*args, **kwargs).last_hidden_state[:, :-1]
        lm_head = self.get_output_embeddings()
        weight, bias = lm_head.weight, lm_head.bias
        labels = labels[:, 1:].to(weight.device)
        mask = labels != -100
        # As trl's fused head does (trl.trainer.utils.add_fused_lm_head): FSDP2 shards the head as DTensors, gathered
        # once here; DeepSpeed ZeRO-3 partitions it and gathers only in the module's own forward, which this skips.
        if isinstance(weight, DTensor):
            weight = weight.full_tensor()
            bias = bias.full_tensor() if bias is not None else None
        with maybe_gather_lm_head_ctx(weight, bias):
            log_probs, entropy, _, _, is_top1 = ChunkedLogProbFunction.apply(
                hidden_states.to(weight.device)[mask],
                weight,
                bias,
                labels[mask],
                temperature,
                LM_HEAD_CHUNK_SIZE,
                None,
                1.0,
                ("log_probs", "entropy", "is_top1"),
            )
        # `masked_scatter` keeps the graph connected when a micro-batch has no label, as trl's head does
        log_probs, entropy, is_top1 = (
            x.new_zeros(mask.shape).masked_scatter(mask, x) for x in (log_probs, entropy, is_top1)
        )
        denominator = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        # A ModelOutput, not a plain object: DDP finds the output tensors in it to hook its gradient reduction
        return FusedCausalLMOutput(
            loss=-log_probs.sum() / denominator, log_probs=log_probs, entropy=entropy, is_top1=is_top1, label_mask=mask
        )

    model.forward = types.MethodType(forward, model)
