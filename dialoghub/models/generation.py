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
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from dialoghub.core.hardware import AUTO, resolve_dtype
from dialoghub.hub.client.refs import ResolvedRepo, resolve_repo
from dialoghub.models import prompts
from dialoghub.models.backends import ENGINES, engines

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "transformers", "vllm", *ENGINES)


@dataclass(frozen=True)
class GenerationSettings:
    """How to decode; serialized with every generated dataset row and result, so it is all plain JSON values."""

    max_new_tokens: int = field(default=256, metadata={"help": "Most tokens generated per answer."})
    do_sample: bool = field(default=False, metadata={"help": "Sample (true) or decode greedily (false)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass."})
    top_k: int = field(default=0, metadata={"help": "Top-k filtering when sampling (0: off)."})
    repetition_penalty: float = field(default=1.0, metadata={"help": "Penalty on tokens already generated (1: none)."})
    seed: int = field(
        default=0,
        metadata={"help": "Seeds the sampler before each batch (see `batch_seed`); greedy decoding ignores it."},
    )
    batch_size: int = field(default=8, metadata={"help": "Prompts generated together."})
    num_beams: int = field(default=1, metadata={"help": "Beam search width (1: no beam search)."})
    length_penalty: float = field(
        default=1.0,
        metadata={"help": "Beam search only: > 1 favours longer answers, < 1 shorter (the score's length exponent)."},
    )
    no_repeat_ngram_size: int = field(default=0, metadata={"help": "Never repeat an n-gram of this size (0: off)."})
    stop_loops: int = field(
        default=0,
        metadata={
            "help": "Stop a sequence once its newest tokens are one span repeated this many times (0: never). A "
            "small model that starts looping never recovers; this saves the compute it would spend up to "
            "max_new_tokens (transformers backend only)."
        },
    )

    def __post_init__(self) -> None:
        problems = []
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.temperature <= 0:
            problems.append(f"temperature must be > 0 (use do_sample=False for greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            problems.append(f"top_k must be >= 0, got {self.top_k}")
        if self.stop_loops == 1 or self.stop_loops < 0:
            problems.append(f"stop_loops must be 0 (off) or >= 2 repetitions, got {self.stop_loops}")
        if self.repetition_penalty <= 0:
            problems.append(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.num_beams < 1:
            problems.append(f"num_beams must be >= 1, got {self.num_beams}")
        if self.num_beams > 1 and (self.do_sample or self.stop_loops):
            # The loop detector reads one row per prompt, beam search has num_beams rows per prompt.
            problems.append("beam search (num_beams > 1) goes with greedy decoding and stop_loops 0")
        if self.no_repeat_ngram_size < 0:
            problems.append(f"no_repeat_ngram_size must be >= 0, got {self.no_repeat_ngram_size}")
        if problems:
            raise ValueError("invalid generation settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GenerationSettings:
        unknown = set(values) - {item.name for item in fields(cls)}
        if unknown:
            raise ValueError(f"unknown generation setting(s): {sorted(unknown)}")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> GenerationSettings:
        return cls.from_dict(json.loads(text))

    def transformers_kwargs(self) -> dict[str, Any]:
        """`model.generate` arguments. Sampling knobs are passed only when sampling, so greedy stays greedy."""
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
        if self.do_sample:
            kwargs |= {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k or None}
        if self.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = self.repetition_penalty
        if self.num_beams > 1:
            kwargs |= {"num_beams": self.num_beams, "length_penalty": self.length_penalty, "early_stopping": True}
        if self.no_repeat_ngram_size:
            kwargs["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        return kwargs


STOP_EOS = "eos"
STOP_LENGTH = "length"
STOP_LOOP = "loop"


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    new_tokens: int
    stop_reason: str
    """`eos`: the model ended its turn; `length`: `max_new_tokens` cut it; `loop`: `stop_loops` cut it."""

    @property
    def finished(self) -> bool:
        return self.stop_reason == STOP_EOS


# A loop is a span of 1 to MAX_LOOP_PERIOD tokens repeated back to back over at least MIN_LOOP_TOKENS tokens, so
# that "!!!" or "ha ha" in a reply never count.
MAX_LOOP_PERIOD = 80
MIN_LOOP_TOKENS = 16


def loop_stopping_criteria(prompt_length: int, repeats: int, ignored_ids: list[int]):
    """A per-sequence `StoppingCriteria` for loops; its `stopped_at` maps a row to its generated length then."""
    import torch
    from transformers import StoppingCriteria

    class LoopStop(StoppingCriteria):
        def __init__(self) -> None:
            self.stopped_at: dict[int, int] = {}
            self.ignored = torch.tensor(ignored_ids, dtype=torch.long)

        def __call__(self, input_ids, scores, **kwargs):
            generated = input_ids[:, prompt_length:]
            length = generated.shape[1]
            looping = torch.zeros(len(input_ids), dtype=torch.bool, device=input_ids.device)
            for period in range(1, MAX_LOOP_PERIOD + 1):
                span = max(period * repeats, MIN_LOOP_TOKENS)
                if span > length:
                    break
                tail = generated[:, -span:]
                looping |= (tail[:, period:] == tail[:, :-period]).all(dim=1)
            # A row that has ended (end-of-sequence, then padding) is not looping.
            looping &= ~torch.isin(generated[:, -1], self.ignored.to(input_ids.device))
            for row in looping.nonzero().flatten().tolist():
                self.stopped_at.setdefault(row, length)
            return looping

    return LoopStop()


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
        settings: GenerationSettings = GenerationSettings(),
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
        settings: GenerationSettings = GenerationSettings(),
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
        outputs = self.model.generate(texts, params, lora_request=self._vllm_lora, use_tqdm=False)
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


def batch_seed(seed: int, batch_number: int) -> int:
    """The torch seed of batch `batch_number` of a `generate` call seeded with `seed` (distinct for seeds < 2**20
    batches apart)."""
    return (seed << 20) + batch_number


def _seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def choose_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    has_vllm = importlib.util.find_spec("vllm") is not None
    if backend == "vllm" and not has_vllm:
        raise ValueError("backend 'vllm' was asked for, but vllm is not installed")
    if backend == "auto":
        return "vllm" if has_vllm and _device() == "cuda" else "transformers"
    return backend


def adapter_base(adapter: ResolvedRepo) -> tuple[str, str | None]:
    """The base model id and revision an adapter was trained on, from its adapter_config.json."""
    from peft import PeftConfig

    config = PeftConfig.from_pretrained(adapter.repo_id, revision=adapter.load_revision)
    return config.base_model_name_or_path, getattr(config, "revision", None)


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


AS_STORED = "as-stored"


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
    """Load `model` (`ID`, `ID@REV` or a folder) with an optional PEFT `adapter` (same forms) at resolved commits.

    With no `model`, the adapter's own base (from its adapter_config.json) is used. The adapter is merged into the
    weights for speed unless the base is quantized (`load_in_4bit`, the GPU recipe) or `merge_adapter=False`.
    `dtype` "auto" is the fastest this CPU computes (`hardware.resolve_dtype`: bfloat16 only with bf16 matrix
    instructions) and the checkpoint's own on GPU; "as-stored" keeps the checkpoint's; float32/bfloat16 as given.
    """
    backend = choose_backend(backend)
    adapter_repo = resolve_repo(adapter, adapter_revision) if adapter else None
    trained_on = adapter_base(adapter_repo) if adapter_repo else None
    if model is None:
        if trained_on is None:
            raise ValueError("give a model, an adapter, or both")
        model, model_revision = trained_on
    base = resolve_repo(model, model_revision)
    if trained_on and trained_on[0] != base.repo_id:
        logger.warning("adapter %s was trained on %s, but is applied to %s", adapter_repo, trained_on[0], base)
    # A decoder continues from the last position, so padding goes first.
    tokenizer = load_tokenizer(base.repo_id, base.load_revision, padding_side="left")
    if backend == "vllm":
        return _load_vllm(base, adapter_repo, tokenizer)
    if backend in ENGINES and (engine := engines.load_or_fall_back(backend, base, adapter_repo, tokenizer)):
        return Generator(engine, tokenizer, base, adapter_repo, backend=backend)

    import torch
    from transformers import AutoModelForCausalLM

    device = _device()
    kwargs: dict[str, Any] = {"revision": base.load_revision, "dtype": torch.bfloat16 if device == "cuda" else "auto"}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
        kwargs["device_map"] = {"": device}
    language_model = AutoModelForCausalLM.from_pretrained(base.repo_id, **kwargs)
    if not load_in_4bit:
        language_model.to(device)
    merged = False
    if adapter_repo is not None:
        from peft import PeftModel

        language_model = PeftModel.from_pretrained(
            language_model, adapter_repo.repo_id, revision=adapter_repo.load_revision
        )
        if merge_adapter and not load_in_4bit:
            language_model = language_model.merge_and_unload()
            merged = True
    if not load_in_4bit and (target := resolve_dtype(dtype, device)) not in (AUTO, AS_STORED):
        # Cast after the merge, so the adapter is merged at the checkpoint's own precision.
        language_model.to(getattr(torch, target))
    language_model.eval()
    return Generator(language_model, tokenizer, base, adapter_repo, backend="transformers", adapter_merged=merged)


def _load_vllm(base: ResolvedRepo, adapter: ResolvedRepo | None, tokenizer) -> Generator:
    from vllm import LLM
    from vllm.lora.request import LoRARequest

    lora_request = None
    if adapter is not None:
        from huggingface_hub import snapshot_download

        path = adapter.repo_id if adapter.is_local else snapshot_download(adapter.repo_id, revision=adapter.sha)
        lora_request = LoRARequest("adapter", 1, path)
    engine = LLM(model=base.repo_id, revision=base.load_revision, tokenizer_revision=base.load_revision,
                 enable_lora=adapter is not None)  # fmt: skip
    return Generator(engine, tokenizer, base, adapter, backend="vllm", _vllm_lora=lora_request)
