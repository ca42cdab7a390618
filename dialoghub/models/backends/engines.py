"""Generation engines other than transformers: what they share, and how `load_generator` gets one.

An engine takes prompts as token ids (the project's tokenizer renders and tokenizes, so every backend sees the same
prompt tokens) and returns generated token ids; everything else is done here, the same way for every engine:

- the end of an answer: the generated ids are cut at the first end-of-turn id, as transformers does;
- the loop detector: `loops.first_loop_lengths` cuts a looping row where `stop_loops` would have stopped it;
- the text: decoded by the project's tokenizer;
- the seed: prompt `i` of a call seeded `s` is sampled with `generation.batch_seed(s, i)`.

Engines read GGUF. The base model's own GGUF is used when the base was converted from it (its `conversion.json`
names the file and its sha256); otherwise (a base with an adapter, a test model) the model is merged in float32 and
written once as GGUF under `<base dir>/engines/gguf/<base sha>-<adapter sha>/`, keyed by both commits. The engine
packages are imported only when used (heavy, and optional): `available()` says which are installed.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dialoghub.core.paths import base_dir
from dialoghub.hub.client.refs import ResolvedRepo
from dialoghub.models import base_models
from dialoghub.models.backends import gguf_export, llamacpp_engine, ov_engine
from dialoghub.models.backends.engine_base import Engine

logger = logging.getLogger(__name__)

# Engine name -> the package that provides it.
ENGINES = {"openvino": "openvino_genai", "llamacpp": "xllamacpp"}
GGUF_CACHE = "engines/gguf"
MODEL_FILE = "model.gguf"


def available(name: str) -> bool:
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; expected one of {sorted(ENGINES)}")
    return importlib.util.find_spec(ENGINES[name]) is not None


def gguf_cache_dir(base: ResolvedRepo, adapter: ResolvedRepo | None) -> Path:
    """Where the GGUF of `base` with `adapter` merged is cached: keyed by both commit shas, never by a branch name."""
    if base.sha is None or (adapter is not None and adapter.sha is None):
        raise ValueError(f"a cached conversion needs commit shas; {base} / {adapter} have none")
    return base_dir() / GGUF_CACHE / f"{base.sha}-{adapter.sha if adapter else 'none'}"


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
    return path if base_models.sha256_of(path) == source.get("sha256") else None


@dataclass
class EngineModel:
    """The GGUF an engine loads, what it holds and how long it took to make (0 when nothing was converted)."""

    path: Path
    weights: str
    conversion_seconds: float


def engine_model(base: ResolvedRepo, adapter: ResolvedRepo | None) -> EngineModel:
    if adapter is None and (path := source_gguf(base)) is not None:
        return EngineModel(path, "q4_1 (the GGUF the base was converted from)", 0.0)
    folder = gguf_cache_dir(base, adapter)
    if (folder / MODEL_FILE).is_file():
        return EngineModel(folder / MODEL_FILE, "float32", 0.0)
    started = time.perf_counter()
    _write_merged_gguf(base, adapter, folder)
    return EngineModel(folder / MODEL_FILE, "float32", time.perf_counter() - started)


def _write_merged_gguf(base: ResolvedRepo, adapter: ResolvedRepo | None, folder: Path) -> None:
    """Merge `adapter` into `base` in float32 and write it as GGUF to `folder`, which appears complete or not at
    all."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base.repo_id, revision=base.load_revision, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter.repo_id, revision=adapter.load_revision).merge_and_unload()
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        AutoTokenizer.from_pretrained(base.repo_id, revision=base.load_revision).save_pretrained(work / "tokenizer")
        upstream = base_models.SMOLLM2.upstream_id
        pre_tokenizer = (
            gguf_export.PRE_TOKENIZERS.get(upstream, "default") if model.config.vocab_size > 40000 else "default"
        )
        gguf_export.write_llama_gguf(
            model, work / "tokenizer", work / MODEL_FILE, name=str(base), pre_tokenizer=pre_tokenizer
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


def load_engine(name: str, base: ResolvedRepo, adapter: ResolvedRepo | None, tokenizer, eos_ids: Sequence[int],
                *, max_batch: int = 32) -> Engine:  # fmt: skip
    """The engine `name` on the GGUF of `base` + `adapter` (converted on first use)."""
    if not available(name):
        raise ModuleNotFoundError(f"the {name} engine needs the {ENGINES[name]} package, which is not installed")
    model = engine_model(base, adapter)
    engine_class = ov_engine.OpenVinoEngine if name == "openvino" else llamacpp_engine.LlamaCppEngine
    engine = engine_class(model.path, tokenizer, eos_ids, max_batch=max_batch)
    engine.weights = model.weights
    engine.conversion_seconds = model.conversion_seconds
    return engine
