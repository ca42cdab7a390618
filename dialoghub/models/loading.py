"""The one loader of a base model with an optional LoRA adapter, at resolved commits, and of its tokenizer.

Generation (and so the leaderboard, the synthetic stage and the demo), reward tuning and the merged-model release load
their models through `load_model`; training takes its tokenizer from `load_tokenizer`. Every reference is resolved to
the commit it points at now (`resolve_model`), so a branch that moves during a run cannot mix two versions.

Precision (`dtype`): "auto" is the fastest this CPU computes (`hardware.resolve_dtype`: bfloat16 only with bf16 matrix
instructions) and the checkpoint's own on GPU; "as-stored" keeps the checkpoint's; "float32"/"bfloat16" as given. A
merged adapter is merged before the cast, at the precision the base was loaded in; a trainable adapter is loaded on a
base already in the target precision, and peft keeps its own weights in float32.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from dialoghub.core.recipes import AUTO, resolve_dtype
from dialoghub.hub.client import ResolvedRepo, resolve_repo
from dialoghub.models import prompts

logger = logging.getLogger(__name__)

AS_STORED = "as-stored"
FLOAT32 = "float32"


def device() -> str:
    """Where models run: the GPU when there is one."""
    import torch  # lazy: the loader's callers that never load a model (recipes, --help) stay light

    return "cuda" if torch.cuda.is_available() else "cpu"


def adapter_base(adapter: ResolvedRepo) -> tuple[str, str | None]:
    """The base model id and revision an adapter was trained on, from its adapter_config.json."""
    from peft import PeftConfig

    config = PeftConfig.from_pretrained(adapter.repo_id, revision=adapter.load_revision)
    return config.base_model_name_or_path, getattr(config, "revision", None)


def resolve_model(
    model: str | None,
    adapter: str | None = None,
    model_revision: str | None = None,
    adapter_revision: str | None = None,
) -> tuple[ResolvedRepo, ResolvedRepo | None]:
    """(base, adapter) at the commits their references point at now. With no `model`, the base is the adapter's own
    (its adapter_config.json); a different base is allowed, with a warning."""
    adapter_repo = resolve_repo(adapter, adapter_revision) if adapter else None
    trained_on = adapter_base(adapter_repo) if adapter_repo else None
    if model is None:
        if trained_on is None:
            raise ValueError("give a model, an adapter, or both")
        model, model_revision = trained_on
    base = resolve_repo(model, model_revision)
    if trained_on and trained_on[0] != base.repo_id:
        logger.warning("adapter %s was trained on %s, but is applied to %s", adapter_repo, trained_on[0], base)
    return base, adapter_repo


def load_tokenizer(repo_id: str, revision: str | None = None, padding_side: str | None = None):
    """The tokenizer of a model repo or folder, with the prompt module's chat template and a pad token (the EOS
    when the model has none); `padding_side` as given, else the tokenizer's own."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(repo_id, revision=revision)
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    prompts.ensure_chat_template(tokenizer)
    return tokenizer


@dataclass
class LoadedModel:
    model: Any
    """A transformers model, or a `PeftModel` when the adapter is kept apart (trainable, or on a 4-bit base)."""
    dtype: str
    """The precision it computes in: a torch dtype name, or "auto"/"as-stored" for the checkpoint's own."""
    adapter_merged: bool


def load_model(
    base: ResolvedRepo,
    adapter: ResolvedRepo | None = None,
    *,
    dtype: str | None = AUTO,
    load_in_4bit: bool = False,
    merge_adapter: bool = True,
    trainable: bool = False,
    attn_implementation: str | None = None,
    target_device: str | None = None,
    quantization_config: Any | None = None,
) -> LoadedModel:
    """`base` with the optional `adapter`, in `dtype` (see the module docstring), on `target_device` (default: the
    GPU when there is one). The adapter is merged into the weights for speed unless it is `trainable`, the base is
    quantized (`load_in_4bit`) or `merge_adapter` is False. `quantization_config` (a `BitsAndBytesConfig`) replaces
    the default NF4/bfloat16 one of `load_in_4bit`: a recipe's own (double quantization, storage dtype)."""
    import torch
    from transformers import AutoModelForCausalLM

    where = target_device or device()
    target = resolve_dtype(dtype, where)
    concrete = target not in (AUTO, AS_STORED)
    merge = adapter is not None and merge_adapter and not (trainable or load_in_4bit)
    kwargs: dict[str, Any] = {"revision": base.load_revision, "attn_implementation": attn_implementation}
    if concrete and (trainable or target == FLOAT32):
        kwargs["dtype"] = getattr(torch, target)
    else:
        kwargs["dtype"] = torch.bfloat16 if where == "cuda" else "auto"
    if load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = quantization_config or BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
        kwargs["device_map"] = {"": where}
    model = AutoModelForCausalLM.from_pretrained(base.repo_id, **kwargs)
    if not load_in_4bit:
        model.to(where)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(
            model, adapter.repo_id, revision=adapter.load_revision, is_trainable=trainable
        )
        if merge:
            model = model.merge_and_unload()
    if concrete and not (load_in_4bit or trainable):
        # Cast after the merge, so the adapter is merged at the precision the base was loaded in.
        model.to(getattr(torch, target))
    if not trainable:
        model.eval()
    return LoadedModel(model, target if concrete else (target or AUTO), merge)
