"""The one batched text generator: synthetic data, the leaderboard eval and the demo all generate through it.

`load_generator("org/model@rev", adapter="org/adapter@rev")` resolves both revisions to commit shas first and loads
exactly those commits (a branch that moves during the run cannot mix two versions), so `Generator.provenance()` names
what really ran. `Generator.generate(conversations, settings)` renders chat messages with the prompt module, then
generates in batches with left padding and the KV cache: greedy by default, sampling when `settings.do_sample`.

Backends: `transformers` (always there) and `vllm`, used only when the package is importable and asked for
(`backend="vllm"`, or `"auto"` on a CUDA machine with vLLM installed).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dialoghub.core.recipes import AUTO
from dialoghub.hub.client import ResolvedRepo
from dialoghub.models import prompts
from dialoghub.models.backends import ENGINES, engines
from dialoghub.models.decoding import (  # noqa: F401  (generation's public names, as callers import them)
    MAX_LOOP_PERIOD,
    MIN_LOOP_TOKENS,
    STOP_EOS,
    STOP_LENGTH,
    STOP_LOOP,
    Completion,
    GenerationSettings,
    batch_seed,
    loop_stopping_criteria,
)
from dialoghub.models.loading import AS_STORED, device, load_model, load_tokenizer, resolve_model

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "transformers", "vllm", *ENGINES)
DEFAULT_SETTINGS = GenerationSettings()


@dataclass
class Generator:
    """A loaded model (with its adapter applied, and merged when possible) and its tokenizer."""

    model: Any
    tokenizer: Any
    base: ResolvedRepo
    adapter: ResolvedRepo | None = None
    backend: str = "transformers"
    adapter_merged: bool = False
    _vllm_lora: Any = field(default=None, repr=False)
    _vllm_dtype: str | None = field(default=None, repr=False)

    @property
    def dtype(self) -> str:
        """The weights' dtype ("bfloat16", "float32"); a vLLM engine has no `.dtype` (the one it was started with),
        and a CPU engine (`models.backends`) states its precision."""
        if self.backend == "vllm":
            return self._vllm_dtype
        if self.backend in ENGINES:
            return self.model.precision
        return str(self.model.dtype).removeprefix("torch.")

    def provenance(self) -> dict[str, Any]:
        return {
            "model_id": self.base.repo_id,
            "model_revision": self.base.revision,
            "model_sha": self.base.sha,
            "adapter_id": self.adapter.repo_id if self.adapter else None,
            "adapter_revision": self.adapter.revision if self.adapter else None,
            "adapter_sha": self.adapter.sha if self.adapter else None,
            "backend": self.backend,
            "prompt_version": prompts.PROMPT_VERSION,
        }

    def render(self, messages: list[dict[str, str]]) -> str:
        return prompts.render_prompt(self.tokenizer, messages)

    def generate(
        self,
        conversations: Sequence[list[dict[str, str]]],
        settings: GenerationSettings = DEFAULT_SETTINGS,
        *,
        sort_by_length: bool = True,
        progress: bool = True,
        desc: str = "generating",
    ) -> list[Completion]:
        """One completion per conversation (chat messages), in the order given."""
        completions: list[Completion | None] = [None] * len(conversations)
        for indexes, batch in self.iter_batches(
            conversations, settings, sort_by_length=sort_by_length, progress=progress, desc=desc
        ):
            for index, completion in zip(indexes, batch, strict=True):
                completions[index] = completion
        return completions  # type: ignore[return-value]

    def iter_batches(
        self,
        conversations: Sequence[list[dict[str, str]]],
        settings: GenerationSettings = DEFAULT_SETTINGS,
        *,
        sort_by_length: bool = True,
        progress: bool = True,
        desc: str = "generating",
    ) -> Iterator[tuple[list[int], list[Completion]]]:
        """Yield `(indexes into conversations, completions)` batch by batch, as they are produced.

        With `sort_by_length`, prompts of similar length share a batch (less padding); the output is the same set.
        Each batch is sampled from `batch_seed(settings.seed, its number)`, so the same call gives the same texts and
        a batch's samples do not depend on how long the batches before it ran.
        """
        from tqdm.auto import tqdm

        texts = [self.render(messages) for messages in conversations]
        order = list(range(len(texts)))
        if sort_by_length and len(texts) > settings.batch_size:
            lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
            order.sort(key=lambda index: -lengths[index])
        with tqdm(total=len(texts), desc=desc, unit="prompt", disable=not progress) as bar:
            for number, start in enumerate(range(0, len(order), settings.batch_size)):
                indexes = order[start : start + settings.batch_size]
                seed = batch_seed(settings.seed, number)
                batch = [texts[index] for index in indexes]
                if self.backend == "vllm":
                    completions = self._generate_vllm(batch, settings, seed)
                elif self.backend in ENGINES:
                    completions = self.model.complete(batch, settings, seed)
                else:
                    _seed_everything(seed)
                    completions = self._generate_transformers(batch, settings)
                bar.update(len(indexes))
                yield indexes, completions

    def _generate_transformers(self, texts: list[str], settings: GenerationSettings) -> list[Completion]:
        import torch

        # The chat template already wrote every special token the model expects (a BOS, if any).
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        inputs = inputs.to(self.model.device)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        prompt_length = inputs["input_ids"].shape[1]
        if limit and prompt_length + settings.max_new_tokens > limit:
            raise ValueError(
                f"a prompt of {prompt_length} tokens plus max_new_tokens={settings.max_new_tokens} exceeds the "
                f"model's {limit} positions; shorten the prompt (fewer few-shot examples) or max_new_tokens"
            )
        eos_ids = self._eos_token_ids()
        extra = {}
        if settings.stop_loops:
            loop_stop = loop_stopping_criteria(
                prompt_length, settings.stop_loops, [*eos_ids, self.tokenizer.pad_token_id]
            )
            extra["stopping_criteria"] = [loop_stop]
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                **settings.transformers_kwargs(),
                **extra,
                use_cache=True,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=eos_ids,
            )
        stopped_at = loop_stop.stopped_at if settings.stop_loops else {}
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        completions = []
        for index, (row, count) in enumerate(zip(output[:, prompt_length:].tolist(), prompt_tokens, strict=True)):
            if index in stopped_at:
                generated, new_tokens, reason = row[: stopped_at[index]], stopped_at[index], STOP_LOOP
            elif (end := next((at for at, token in enumerate(row) if token in eos_ids), None)) is not None:
                generated, new_tokens, reason = row[:end], end + 1, STOP_EOS
            else:
                generated, new_tokens, reason = row, len(row), STOP_LENGTH
            completions.append(
                Completion(
                    text=self.tokenizer.decode(generated, skip_special_tokens=True),
                    prompt_tokens=count,
                    new_tokens=new_tokens,
                    stop_reason=reason,
                )
            )
        return completions

    def _eos_token_ids(self) -> list[int]:
        configured = self.model.generation_config.eos_token_id
        ids = configured if isinstance(configured, list) else [configured] if configured is not None else []
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    def _generate_vllm(self, texts: list[str], settings: GenerationSettings, seed: int) -> list[Completion]:
        from vllm import SamplingParams

        if settings.stop_loops:
            logger.warning("stop_loops is not applied by the vllm backend")
        if settings.num_beams > 1 or settings.no_repeat_ngram_size:
            logger.warning("num_beams and no_repeat_ngram_size are not applied by the vllm backend")
        params = SamplingParams(
            max_tokens=settings.max_new_tokens,
            temperature=settings.temperature if settings.do_sample else 0.0,
            top_p=settings.top_p if settings.do_sample else 1.0,
            top_k=(settings.top_k or -1) if settings.do_sample else -1,
            repetition_penalty=settings.repetition_penalty,
            seed=seed,
        )
        # The chat template already wrote every special token (Llama-3's <|begin_of_text|>): vLLM would add a second
        # BOS to a text prompt, so it gets token ids, tokenized as the transformers path does (a `TokensPrompt`).
        token_ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        outputs = self.model.generate(
            [{"prompt_token_ids": ids} for ids in token_ids], params, lora_request=self._vllm_lora, use_tqdm=False
        )
        return [
            Completion(
                text=output.outputs[0].text,
                prompt_tokens=len(output.prompt_token_ids),
                new_tokens=len(output.outputs[0].token_ids),
                stop_reason=STOP_EOS if output.outputs[0].finish_reason == "stop" else STOP_LENGTH,
            )
            for output in outputs
        ]


# Round-trip summaries (a generated dialogue summarized again, compared with the summary it was written from) are
# scored the same way wherever they are made: the summarizer's own answer length, greedy so they are reproducible,
# cut when they loop.
ROUND_TRIP_GENERATION = GenerationSettings(
    max_new_tokens=prompts.ANSWER_MAX_NEW_TOKENS[prompts.SUMMARIZE], stop_loops=3
)


def round_trip_summaries(
    summarizer: Generator, conversations: Sequence[list[dict[str, str]]], *, progress: bool = False
) -> list[str]:
    """The summarizer's summary of each `prompts.summarize_messages` conversation, whitespace normalized."""
    completions = summarizer.generate(
        conversations, ROUND_TRIP_GENERATION, sort_by_length=False, progress=progress, desc="round-trip summaries"
    )
    return [" ".join(completion.text.split()) for completion in completions]


def _seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def choose_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    has_vllm = importlib.util.find_spec("vllm") is not None
    if backend == "vllm" and not has_vllm:
        raise ValueError("backend 'vllm' was asked for, but vllm is not installed")
    if backend == "auto":
        return "vllm" if has_vllm and device() == "cuda" else "transformers"
    return backend


def load_generator(
    model: str | None,
    adapter: str | None = None,
    *,
    model_revision: str | None = None,
    adapter_revision: str | None = None,
    backend: str = "auto",
    load_in_4bit: bool = False,
    merge_adapter: bool = True,
    dtype: str | None = AUTO,
) -> Generator:
    """A `Generator` of `model` (`ID`, `ID@REV` or a folder) with an optional PEFT `adapter` (same forms), loaded at
    resolved commits by `dialoghub.models.loading` (no `model`: the adapter's own base; `dtype`, `load_in_4bit` and
    `merge_adapter` as `load_model` takes them)."""
    backend = choose_backend(backend)
    base, adapter_repo = resolve_model(model, adapter, model_revision, adapter_revision)
    # A decoder continues from the last position, so padding goes first.
    tokenizer = load_tokenizer(base.repo_id, base.load_revision, padding_side="left")
    if backend == "vllm":
        return _load_vllm(base, adapter_repo, tokenizer, dtype=dtype, load_in_4bit=load_in_4bit)
    if backend in ENGINES and (engine := engines.load_or_fall_back(backend, base, adapter_repo, tokenizer)):
        return Generator(engine, tokenizer, base, adapter_repo, backend=backend)
    loaded = load_model(base, adapter_repo, dtype=dtype, load_in_4bit=load_in_4bit, merge_adapter=merge_adapter)
    return Generator(
        loaded.model, tokenizer, base, adapter_repo, backend="transformers", adapter_merged=loaded.adapter_merged
    )


# vLLM engine limits (`vllm.LLM` keywords, https://docs.vllm.ai/en/latest/api/vllm/entrypoints/llm.html):
# - max_model_len: unset, it is the model's own context (131,072 tokens for Llama-3.1), and the engine refuses to start
#   when the KV cache of one such sequence does not fit. A dialog prompt and its answer fit in 4,096 tokens.
# - gpu_memory_utilization: the share of the GPU one engine takes (weights + KV cache), 0.9 by default. The leaderboard
#   (round-trip summarizer) and the synthetic stage start a second engine in the same process, so each takes 0.45.
# - max_lora_rank: 16 by default, and an adapter of a higher rank is refused; it must be one of vLLM's MaxLoRARanks.
VLLM_MAX_MODEL_LEN = 4096
VLLM_GPU_MEMORY_UTILIZATION = 0.45
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_engine_kwargs(
    base: ResolvedRepo, adapter: ResolvedRepo | None, *, dtype: str | None = AUTO, load_in_4bit: bool = False
) -> dict[str, Any]:
    """The `vllm.LLM(...)` keywords of a generator: the limits above, the dtype the transformers path would use on a
    GPU, bitsandbytes in-flight 4-bit quantization for `load_in_4bit` (vLLM's `quantization="bitsandbytes"`), and
    LoRA sized for the adapter's rank."""
    if dtype in (AUTO, None):
        dtype = "bfloat16"  # what the transformers path loads on CUDA
    elif dtype == AS_STORED:
        dtype = _config_dtype(base)  # named, since vLLM's "auto" serves a float32 checkpoint in float16
    kwargs: dict[str, Any] = {
        "model": base.repo_id,
        "revision": base.load_revision,
        "tokenizer_revision": base.load_revision,
        "dtype": dtype,
        "max_model_len": VLLM_MAX_MODEL_LEN,
        "gpu_memory_utilization": VLLM_GPU_MEMORY_UTILIZATION,
        "enable_lora": adapter is not None,
    }
    if load_in_4bit:
        kwargs["quantization"] = "bitsandbytes"
    if adapter is not None:
        from peft import PeftConfig

        rank = PeftConfig.from_pretrained(adapter.repo_id, revision=adapter.load_revision).r
        supported = [size for size in VLLM_LORA_RANKS if size >= rank]
        if not supported:
            raise ValueError(f"adapter {adapter} has LoRA rank {rank}; vLLM serves ranks up to {VLLM_LORA_RANKS[-1]}")
        kwargs["max_lora_rank"] = supported[0]
    return kwargs


def _load_vllm(
    base: ResolvedRepo,
    adapter: ResolvedRepo | None,
    tokenizer,
    *,
    dtype: str | None = AUTO,
    load_in_4bit: bool = False,
) -> Generator:
    from vllm import LLM
    from vllm.lora.request import LoRARequest

    lora_request = None
    if adapter is not None:
        from huggingface_hub import snapshot_download

        path = adapter.repo_id if adapter.is_local else snapshot_download(adapter.repo_id, revision=adapter.sha)
        lora_request = LoRARequest("adapter", 1, path)
    kwargs = vllm_engine_kwargs(base, adapter, dtype=dtype, load_in_4bit=load_in_4bit)
    engine = LLM(**kwargs)
    return Generator(
        engine, tokenizer, base, adapter, backend="vllm", _vllm_lora=lora_request, _vllm_dtype=kwargs["dtype"]
    )


def _config_dtype(base: ResolvedRepo) -> str:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(base.repo_id, revision=base.load_revision)
    return str(getattr(config, "dtype", None) or "float32").removeprefix("torch.")
