"""Generation engines other than transformers: what they share, and how `load_generator` gets one.

An engine takes prompts as token ids (the project's tokenizer renders and tokenizes, so every backend sees the same
prompt tokens) and returns generated token ids; everything else is done here, the same way for every engine:

- the end of an answer: the generated ids are cut at the first end-of-turn id, as transformers does;
- the loop detector: `loops.first_loop_lengths` cuts a looping row where `stop_loops` would have stopped it;
- the text: decoded by the project's tokenizer;
- the seed: prompt `i` of a call seeded `s` is sampled with `decoding.batch_seed(s, i)`.

Engines read GGUF. The base model's own GGUF is used when the base was converted from it (its `conversion.json`
names the file and its sha256); otherwise (a base with an adapter, a test model) the model is merged in float32 and
written once as GGUF under `<base dir>/engines/gguf-v2/<base sha>-<adapter sha>/`, keyed by both commits. The engine
packages are imported only when used (heavy, and optional): `available()` says which are installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dialoghub.core.files import sha256_of
from dialoghub.core.paths import base_dir
from dialoghub.core.recipes import default_threads
from dialoghub.hub.client import ResolvedRepo
from dialoghub.models import base_models, decoding
from dialoghub.models.backends import ENGINES, gguf_export, loops
from dialoghub.models.loading import FLOAT32, load_model

logger = logging.getLogger(__name__)

# Versioned by what `gguf_export` writes: v2 marks special tokens CONTROL, so a v1 file (which OpenVINO cannot compile)
# is never reused.
GGUF_CACHE = "engines/gguf-v2"
# The base's own GGUF holds Q4_1 blocks: the same values as its dequantized float32 safetensors.
SOURCE_WEIGHTS = "q4_1"
# The matrices' type of a converted GGUF, per engine: OpenVINO reads no float32 matrices from GGUF.
ENGINE_WEIGHTS = {"openvino": "float16", "llamacpp": "float32"}
MODEL_FILE = "model.gguf"


def available(name: str) -> bool:
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; expected one of {sorted(ENGINES)}")
    return importlib.util.find_spec(ENGINES[name]) is not None


def repo_identity(repo: ResolvedRepo) -> str:
    """A repo's commit sha; for a local folder (no commit), `local-` and the sha256 of its files' sha256s."""
    if not repo.is_local:
        return repo.sha
    digest = hashlib.sha256()
    for path in sorted(Path(repo.repo_id).rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            digest.update(f"{path.relative_to(repo.repo_id).as_posix()}\0{sha256_of(path)}\n".encode())
    return f"local-{digest.hexdigest()}"


def gguf_cache_dir(base: ResolvedRepo, adapter: ResolvedRepo | None, weights: str = "float32") -> Path:
    """Where the GGUF of `base` with `adapter` merged is cached: keyed by both commits (never by a branch name) and
    the weights' type."""
    key = f"{repo_identity(base)}-{repo_identity(adapter) if adapter else 'none'}"
    return base_dir() / GGUF_CACHE / (key if weights == "float32" else f"{key}-{weights}")


def _stamp_of(base: ResolvedRepo) -> dict | None:
    if base.is_local:
        return base_models.read_conversion_stamp(base.repo_id)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        path = hf_hub_download(base.repo_id, base_models.CONVERSION_STAMP, revision=base.sha)
    except EntryNotFoundError:
        return None
    return json.loads(Path(path).read_text(encoding="utf-8"))


def source_gguf(base: ResolvedRepo) -> Path | None:
    """The installed GGUF that `base` was converted from, if its stamp names it and the sha256 still matches."""
    stamp = _stamp_of(base)
    source = (stamp or {}).get("source") or {}
    if source.get("file") != base_models.SMOLLM2.relative_path:
        return None
    try:
        path = base_models.SMOLLM2.path()
    except FileNotFoundError:
        return None
    return path if sha256_of(path) == source.get("sha256") else None


@dataclass
class EngineModel:
    """The GGUF an engine loads, what it holds and how long it took to make (0 when nothing was converted)."""

    path: Path
    weights: str
    conversion_seconds: float


def engine_model(base: ResolvedRepo, adapter: ResolvedRepo | None, weights: str = "float32") -> EngineModel:
    """The base's own GGUF when there is no adapter, else the merged model written as GGUF with `weights` matrices."""
    if adapter is None and (path := source_gguf(base)) is not None:
        return EngineModel(path, SOURCE_WEIGHTS, 0.0)
    folder = gguf_cache_dir(base, adapter, weights)
    if (folder / MODEL_FILE).is_file():
        return EngineModel(folder / MODEL_FILE, weights, 0.0)
    started = time.perf_counter()
    _write_merged_gguf(base, adapter, folder, weights)
    return EngineModel(folder / MODEL_FILE, weights, time.perf_counter() - started)


def _write_merged_gguf(base: ResolvedRepo, adapter: ResolvedRepo | None, folder: Path, weights: str) -> None:
    """Merge `adapter` into `base` in float32 and write it as GGUF to `folder`, which appears complete or not at
    all."""
    from transformers import AutoTokenizer

    model = load_model(base, adapter, dtype=FLOAT32, target_device="cpu").model
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        AutoTokenizer.from_pretrained(base.repo_id, revision=base.load_revision).save_pretrained(work / "tokenizer")
        # The tokenizer's pre-tokenizer as llama.cpp names it: SmolLM2's for the base converted from its GGUF.
        pre_tokenizer = gguf_export.SMOLLM_PRE_TOKENIZER if _stamp_of(base) else gguf_export.DEFAULT_PRE_TOKENIZER
        gguf_export.write_llama_gguf(
            model, work / "tokenizer", work / MODEL_FILE, name=str(base), pre_tokenizer=pre_tokenizer, weights=weights
        )
        shutil.rmtree(work / "tokenizer")
        (work / "source.json").write_text(
            json.dumps({"base": str(base), "base_sha": base.sha, "adapter": str(adapter) if adapter else None,
                        "adapter_sha": adapter.sha if adapter else None}, indent=2) + "\n",
            encoding="utf-8",
        )  # fmt: skip
        work.rename(folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    logger.info("Wrote %s", folder / MODEL_FILE)


class Engine:
    """What `Generator` calls: `complete(texts, settings)`; subclasses implement `generate_ids`."""

    name = "engine"
    precision = "float32"

    def __init__(self, tokenizer, eos_ids: Sequence[int]) -> None:
        self.tokenizer = tokenizer
        self.eos_ids = list(eos_ids)

    @classmethod
    def precision_of(cls, weights: str) -> str:
        """What the engine computes with on `weights` matrices, as the bench's precision column names it."""
        if weights in (FLOAT32, SOURCE_WEIGHTS):  # the values the transformers float32 path holds
            return cls.precision
        return f"{cls.precision} ({weights} weights)"

    def generate_ids(self, prompts: list[list[int]], settings, seeds: list[int]) -> list[list[int]]:
        raise NotImplementedError

    def complete(self, texts: Sequence[str], settings, seed: int) -> list[Any]:
        """One `decoding.Completion` per rendered prompt text, sampled from `seed`."""
        unsupported = [name for name, value in (("num_beams", settings.num_beams > 1),
                       ("no_repeat_ngram_size", settings.no_repeat_ngram_size)) if value]  # fmt: skip
        if unsupported:
            raise ValueError(f"the {self.name} backend does not apply {', '.join(unsupported)}")
        prompt_ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        seeds = [decoding.batch_seed(seed, index) for index in range(len(prompt_ids))]
        rows = self.generate_ids(prompt_ids, settings, seeds)
        ends = [next((at for at, token in enumerate(row) if token in self.eos_ids), None) for row in rows]
        answers = [row[:end] if end is not None else row for row, end in zip(rows, ends, strict=True)]
        loop_ends = (
            loops.first_loop_lengths(answers, settings.stop_loops, [*self.eos_ids, self.tokenizer.pad_token_id])
            if settings.stop_loops
            else [None] * len(rows)
        )
        completions = []
        for prompt, answer, end, loop_end in zip(prompt_ids, answers, ends, loop_ends, strict=True):
            if loop_end is not None:
                kept, new_tokens, reason = answer[:loop_end], loop_end, decoding.STOP_LOOP
            elif end is not None:
                kept, new_tokens, reason = answer, end + 1, decoding.STOP_EOS
            else:
                kept, new_tokens, reason = answer, len(answer), decoding.STOP_LENGTH
            completions.append(
                decoding.Completion(
                    text=self.tokenizer.decode(kept, skip_special_tokens=True),
                    prompt_tokens=len(prompt),
                    new_tokens=new_tokens,
                    stop_reason=reason,
                )
            )
        return completions


# Float32 compute and KV cache: the transformers path's numbers (OpenVINO's CPU defaults are u8 KV, int8 activations).
EXACT_PROPERTIES = {
    "INFERENCE_PRECISION_HINT": "f32",
    "KV_CACHE_PRECISION": "f32",
    "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0",
}
KV_CACHE_GB = 2


class OpenVinoEngine(Engine):
    """OpenVINO GenAI's continuous-batching pipeline on a GGUF file, on CPU.

    Precision is pinned to what transformers computes on an AVX2 CPU: float32 activations (`INFERENCE_PRECISION_HINT`),
    a float32 KV cache (OpenVINO's CPU default is u8) and no dynamic int8 quantization of activations (its default for
    compressed weights). The weights are the GGUF's (the base's own Q4_1 blocks, or float32 after a merge), the same
    values the transformers path holds dequantized.
    """

    name = "openvino"
    precision = "float32"

    def __init__(self, gguf_path: str | Path, tokenizer, eos_ids: Sequence[int], *, max_batch: int = 32) -> None:
        super().__init__(tokenizer, eos_ids)
        import openvino_genai

        scheduler = openvino_genai.SchedulerConfig()
        scheduler.cache_size = KV_CACHE_GB
        scheduler.max_num_seqs = max_batch
        scheduler.max_num_batched_tokens = 4096
        scheduler.dynamic_split_fuse = True
        self.pipeline = openvino_genai.ContinuousBatchingPipeline(str(gguf_path), scheduler, "CPU", EXACT_PROPERTIES)

    def _config(self, settings, seed: int):
        import openvino_genai

        config = openvino_genai.GenerationConfig()
        config.max_new_tokens = settings.max_new_tokens
        config.do_sample = settings.do_sample
        if settings.do_sample:
            config.temperature = settings.temperature
            config.top_p = settings.top_p
            config.top_k = settings.top_k or 0
            config.rng_seed = seed
        config.repetition_penalty = settings.repetition_penalty
        config.stop_token_ids = set(self.eos_ids)
        config.eos_token_id = self.eos_ids[0]
        return config

    def generate_ids(self, prompts: list[list[int]], settings, seeds: list[int]) -> list[list[int]]:
        import numpy as np
        import openvino as ov

        inputs = [ov.Tensor(np.array([ids], dtype=np.int64)) for ids in prompts]
        configs = [self._config(settings, seed) for seed in seeds]
        rows = [list(result.m_generation_ids[0]) for result in self.pipeline.generate(inputs, configs)]
        # A row ends early only at an end-of-turn id, which OpenVINO may leave out of the ids: put it back, so that
        # the stop reason reads `eos` as on the transformers path.
        return [
            row + [self.eos_ids[0]] if len(row) < settings.max_new_tokens and (not row or row[-1] not in self.eos_ids)
            else row
            for row in rows
        ]  # fmt: skip


CONTEXT_PER_SLOT = 2048


class LlamaCppEngine(Engine):
    """llama.cpp (the prebuilt `xllamacpp` wheel: its generic x86-64 build picks AVX2 or AVX-512 kernels at run time)
    serving a GGUF file in-process, one parallel slot per row of a batch.

    llama.cpp's sampler defaults differ from transformers' (top-k 40, min-p 0.05, a repetition penalty over the last 64
    tokens only); every one is set so that the settings mean what they mean for transformers.
    """

    name = "llamacpp"
    precision = "float32"

    @classmethod
    def precision_of(cls, weights: str) -> str:
        # ggml's CPU kernels multiply a quantized matrix by activations quantized to 8 bits (its `vec_dot_type`: q8_1
        # for Q4_1), so on the base's own Q4_1 GGUF the activations are not the float32 path's.
        if weights == SOURCE_WEIGHTS:
            return f"q8_1 activations ({weights} weights)"
        return super().precision_of(weights)

    def __init__(self, gguf_path: str | Path, tokenizer, eos_ids: Sequence[int], *, max_batch: int = 32) -> None:
        super().__init__(tokenizer, eos_ids)
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(gguf_path)
        params.n_parallel = max_batch
        params.n_ctx = CONTEXT_PER_SLOT * max_batch
        params.n_batch = 2048
        params.cpuparams.n_threads = default_threads()
        params.cpuparams_batch.n_threads = default_threads()
        params.warmup = False
        self.max_batch = max_batch
        self.server = xllamacpp.Server(params)

    def _request(self, prompt: list[int], settings, seed: int) -> dict:
        request = {
            "prompt": prompt,
            "n_predict": settings.max_new_tokens,
            "cache_prompt": False,
            "seed": seed,
            "temperature": settings.temperature if settings.do_sample else 0.0,
            "top_p": settings.top_p if settings.do_sample else 1.0,
            "top_k": (settings.top_k or 0) if settings.do_sample else 0,
            "min_p": 0.0,
            "typical_p": 1.0,
            "repeat_penalty": settings.repetition_penalty,
            "repeat_last_n": CONTEXT_PER_SLOT,  # the whole context, as transformers applies it
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
        }
        return request

    def _complete(self, request: dict) -> list[int]:
        response = self.server.handle_completions(request)
        if isinstance(response, str):
            response = json.loads(response)
        if "choices" not in response:
            raise RuntimeError(f"llama.cpp: {response.get('error') or response}")
        # xllamacpp answers in the OpenAI format, text only: the ids are the text tokenized again (the same ids but
        # where a merge could be spelled two ways), and an end-of-turn id where it stopped on one.
        choice = response["choices"][0]
        tokens = self.tokenizer(choice["text"], add_special_tokens=False)["input_ids"]
        return tokens + [self.eos_ids[0]] if choice.get("finish_reason") == "stop" else tokens

    def generate_ids(self, prompts: list[list[int]], settings, seeds: list[int]) -> list[list[int]]:
        requests = [self._request(prompt, settings, seed) for prompt, seed in zip(prompts, seeds, strict=True)]
        with ThreadPoolExecutor(min(self.max_batch, len(requests))) as pool:
            return list(pool.map(self._complete, requests))


def load_engine(name: str, base: ResolvedRepo, adapter: ResolvedRepo | None, tokenizer, eos_ids: Sequence[int],
                *, max_batch: int = 32) -> Engine:  # fmt: skip
    """The engine `name` on the GGUF of `base` + `adapter` (converted on first use)."""
    if not available(name):
        raise ModuleNotFoundError(f"the {name} engine needs the {ENGINES[name]} package, which is not installed")
    model = engine_model(base, adapter, ENGINE_WEIGHTS[name])
    engine_class = OpenVinoEngine if name == "openvino" else LlamaCppEngine
    engine = engine_class(model.path, tokenizer, eos_ids, max_batch=max_batch)
    engine.weights = model.weights
    engine.precision = engine_class.precision_of(model.weights)
    engine.conversion_seconds = model.conversion_seconds
    return engine


def eos_ids_of(base: ResolvedRepo, tokenizer) -> list[int]:
    """The ids that end an answer: the model's generation config's and the tokenizer's, as the transformers path."""
    from transformers import GenerationConfig

    try:
        configured = GenerationConfig.from_pretrained(base.repo_id, revision=base.load_revision).eos_token_id
    except OSError:  # no generation_config.json
        configured = None
    ids = configured if isinstance(configured, list) else [configured] if configured is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def load_or_fall_back(name: str, base: ResolvedRepo, adapter: ResolvedRepo | None, tokenizer) -> Engine | None:
    """The engine, or None after one warning naming why, so that the caller loads transformers instead."""
    try:
        return load_engine(name, base, adapter, tokenizer, eos_ids_of(base, tokenizer))
    except Exception as error:  # noqa: BLE001 - any failure of an optional engine means: use transformers
        logger.warning("generation backend %r unavailable (%s: %s); falling back to transformers", name,
                       type(error).__name__, error)  # fmt: skip
        return None
