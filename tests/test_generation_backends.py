"""The generation backends of `dialoghub.models.backends` on the tiny random models: the vectorised loop detector
against the reference one, the GGUF export against transformers' own GGUF reader, every engine against transformers
float32 (greedy, token for token), the conversion cache's key, and the fallback to transformers."""

from __future__ import annotations

import dataclasses
import logging
import random
import shutil

import pytest
import torch

from dialoghub.hub.client import ResolvedRepo
from dialoghub.models import generation, prompts
from dialoghub.models.backends import ENGINES, engines, gguf_export, loops
from dialoghub.models.base_models import drop_gguf_quantizer_state
from dialoghub.models.generation import GenerationSettings, load_generator
from tests.tiny_models import save_tiny_base, tiny_tokenizer, tiny_tweetsumm


def _reference_and_vectorised(rows: list[list[int]], prompt: list[int], repeats: int, ignored: list[int]):
    """Feed both detectors the same growing batch, step by step; return their `stopped_at` and per-step outputs."""
    reference = generation.loop_stopping_criteria(len(prompt), repeats, ignored)
    vectorised = loops.loop_stopping_criteria(len(prompt), repeats, ignored)
    tokens = torch.tensor([prompt + row for row in rows])
    for length in range(1, len(rows[0]) + 1):
        ids = tokens[:, : len(prompt) + length]
        assert torch.equal(reference(ids, None), vectorised(ids, None)), f"step {length}"
    return reference.stopped_at, vectorised.stopped_at


@pytest.mark.parametrize("repeats", [2, 3, 5])
def test_the_vectorised_loop_detector_stops_where_the_reference_does(repeats):
    rng = random.Random(repeats)
    rows = []
    for period in (1, 2, 3, 7, 20, 41, 80):
        span = [rng.randrange(5, 50) for _ in range(period)]
        rows.append([rng.randrange(5, 50) for _ in range(rng.randrange(0, 30))] + span * 400)
    rows.append([rng.randrange(5, 50) for _ in range(400)])  # no loop (almost surely)
    rows.append([7] * 10 + [1] + [0] * 389)  # ends (1 is end-of-sequence, 0 padding): never looping
    rows = [row[:400] for row in rows]
    reference, vectorised = _reference_and_vectorised(rows, [3, 4, 5], repeats, ignored=[1, 0])
    assert reference == vectorised
    assert set(reference) >= {0, 1, 2, 3, 4, 5}  # the short periods did loop


def test_first_loop_lengths_is_where_the_detector_stops():
    rows = [[5, 6] * 20, [9, 8, 7, 6, 5, 4], [4] * 15 + [2] * 3]
    reference, _ = _reference_and_vectorised([row + [0] * (40 - len(row)) for row in rows], [3], 3, [1, 0])
    assert loops.first_loop_lengths(rows, 3, [1, 0]) == [reference.get(0), None, None]
    assert reference.get(0) == 16  # MIN_LOOP_TOKENS: "5 6" three times is not yet a loop


def test_a_tiny_llama_written_as_gguf_reads_back_with_the_same_weights_and_tokens(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = save_tiny_base(tmp_path / "base")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    path = gguf_export.write_llama_gguf(
        model, folder, tmp_path / "gguf" / "tiny.gguf", name="tiny", pre_tokenizer="default"
    )

    back = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    expected = model.state_dict()
    for key, tensor in back.state_dict().items():
        assert torch.equal(tensor, expected[key]), key
    tokenizer = AutoTokenizer.from_pretrained(folder)
    gguf_tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    text = "<|im_start|>user\nMy parcel is late, can you help?<|im_end|>\n"
    assert gguf_tokenizer(text)["input_ids"] == tokenizer(text)["input_ids"]


# ---------------------------------------------------------------- the engines, on a tiny random Llama


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return save_tiny_base(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture
def private_base_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DIALOGHUB_BASE_DIR", str(tmp_path / "base-dir"))
    return tmp_path / "base-dir"


def _conversations():
    rows = tiny_tweetsumm(validation=4)["validation"]
    return [prompts.summarize_messages(row["dialogue"]) for row in rows] + [
        prompts.generate_messages(row["summaries"][0]) for row in rows
    ]


def _same_weights_reference(tiny_base, engine: str, folder):
    """A transformers float32 model holding exactly the weights the engine computes with: the tiny base, or its
    GGUF conversion read back (float16 matrices for OpenVINO)."""
    from transformers import AutoModelForCausalLM

    weights = engines.ENGINE_WEIGHTS[engine]
    if weights == "float32":
        return tiny_base
    converted = engines.engine_model(ResolvedRepo(str(tiny_base), None, None), None, weights).path
    model = AutoModelForCausalLM.from_pretrained(converted.parent, gguf_file=converted.name, dtype=torch.float32)
    drop_gguf_quantizer_state(model)
    model.save_pretrained(folder)
    shutil.copytree(
        tiny_base, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.safetensors", "config.json")
    )
    return folder


# llama.cpp's float32 kernels sum in another order than torch's: on this random model (flat logits, near ties) one
# answer of eight drifts after a few tokens (7 of 16 real summaries are identical, generate_bench.py).
LLAMACPP_GREEDY = pytest.mark.xfail(reason="llama.cpp's greedy answers drift from torch's on near ties", strict=True)
GREEDY_ENGINES = ["openvino", pytest.param("llamacpp", marks=LLAMACPP_GREEDY)]
# llama.cpp's parallel slots share batches whose make-up varies from run to run, so a seed does not fix its samples.
SAMPLING_ENGINES = [
    # Measured on the tiny Llama: seeds 0 and 1 give the same eight texts, so the per-request `rng_seed` is not used.
    pytest.param(
        "openvino", marks=pytest.mark.xfail(reason="OpenVINO GenAI 2026.4 ignores the per-request seed", strict=True)
    ),
    pytest.param("llamacpp", marks=pytest.mark.xfail(reason="llama.cpp samples differ between runs", strict=True)),
]


@pytest.mark.parametrize("engine", GREEDY_ENGINES)
def test_an_engine_decodes_greedily_as_transformers_float32_does(engine, tiny_base, private_base_dir, tmp_path):
    pytest.importorskip(ENGINES[engine])
    reference = load_generator(
        str(_same_weights_reference(tiny_base, engine, tmp_path / "reference")),
        backend="transformers",
        dtype="float32",
    )
    candidate = load_generator(str(tiny_base), backend=engine)
    assert candidate.backend == engine
    assert candidate.provenance()["backend"] == engine
    settings = GenerationSettings(max_new_tokens=24, batch_size=4)
    want = reference.generate(_conversations(), settings, progress=False)
    got = candidate.generate(_conversations(), settings, progress=False)
    # llama.cpp answers in text, so its token count is that of the text tokenized again.
    assert [(c.text, c.stop_reason) for c in got] == [(c.text, c.stop_reason) for c in want]


@pytest.mark.parametrize("engine", SAMPLING_ENGINES)
def test_an_engine_samples_the_same_texts_from_the_same_seed(engine, tiny_base, private_base_dir):
    pytest.importorskip(ENGINES[engine])
    generator = load_generator(str(tiny_base), backend=engine)
    assert generator.backend == engine
    settings = GenerationSettings(max_new_tokens=16, do_sample=True, temperature=0.9, top_p=0.9, batch_size=4)
    first = [c.text for c in generator.generate(_conversations(), settings, progress=False)]
    again = [c.text for c in generator.generate(_conversations(), settings, progress=False)]
    other = [
        c.text for c in generator.generate(_conversations(), dataclasses.replace(settings, seed=1), progress=False)
    ]
    assert first == again
    assert first != other


def test_the_conversion_cache_is_keyed_by_the_base_and_the_adapter(tiny_base, tmp_path, private_base_dir):
    base = ResolvedRepo("org/base", "main", "a" * 40)
    adapter = ResolvedRepo("org/adapter", "v1", "b" * 40)
    other_adapter = ResolvedRepo("org/adapter", "v2", "c" * 40)
    keys = {engines.gguf_cache_dir(base, None), engines.gguf_cache_dir(base, adapter)}
    keys.add(engines.gguf_cache_dir(base, other_adapter))
    keys.add(engines.gguf_cache_dir(ResolvedRepo("org/base", "main", "d" * 40), adapter))
    assert len(keys) == 4
    assert all(key.parent == private_base_dir / engines.GGUF_CACHE for key in keys)
    assert engines.gguf_cache_dir(ResolvedRepo("org/base", "v1.0", "a" * 40), adapter).name == f"{'a' * 40}-{'b' * 40}"

    local = ResolvedRepo(str(tiny_base), None, None)
    first = engines.engine_model(local, None)
    assert first.conversion_seconds > 0 and first.path.is_file()
    assert first.path.parent == engines.gguf_cache_dir(local, None)
    again = engines.engine_model(local, None)
    assert (again.path, again.conversion_seconds) == (first.path, 0.0)
    changed = shutil.copytree(tiny_base, tmp_path / "changed")
    (changed / "config.json").write_text((changed / "config.json").read_text() + "\n")
    assert engines.gguf_cache_dir(ResolvedRepo(str(changed), None, None), None) != first.path.parent


def test_a_missing_engine_falls_back_to_transformers_with_one_warning(
    tiny_base, monkeypatch, caplog, private_base_dir
):
    monkeypatch.setitem(ENGINES, "openvino", "no_such_engine_package")
    with caplog.at_level(logging.WARNING, logger="dialoghub.models.backends.engines"):
        generator = load_generator(str(tiny_base), backend="openvino")
    assert generator.backend == "transformers"
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "'openvino' unavailable" in warnings[0] and "falling back to transformers" in warnings[0]


class _ScriptedEngine(engines.Engine):
    """An engine whose generated ids are given: to test what every engine shares (end of turn, loops, seeds)."""

    name = "scripted"

    def __init__(self, tokenizer, eos_ids, rows):
        super().__init__(tokenizer, eos_ids)
        self.rows = rows
        self.seeds = None

    def generate_ids(self, prompts, settings, seeds):
        self.seeds = seeds
        return [row[: settings.max_new_tokens] for row in self.rows]


def test_the_precision_column_names_what_each_engine_computes_with():
    """The bench's greedy comparison expects same-precision backends to agree, so the label must not call llama.cpp's
    8-bit activations float32."""
    assert engines.LlamaCppEngine.precision_of(engines.SOURCE_WEIGHTS) == "q8_1 activations (q4_1 weights)"
    assert engines.LlamaCppEngine.precision_of("float32") == "float32"
    assert engines.OpenVinoEngine.precision_of("float16") == "float32 (float16 weights)"
    assert engines.OpenVinoEngine.precision_of(engines.SOURCE_WEIGHTS) == "float32"


def test_every_engine_ends_answers_cuts_loops_and_seeds_prompts_the_same_way():
    tokenizer = tiny_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    words = tokenizer("Hi, my parcel is late", add_special_tokens=False)["input_ids"]
    loop = tokenizer(" ha", add_special_tokens=False)["input_ids"] * 40
    engine = _ScriptedEngine(tokenizer, [eos], [words + [eos] + words, loop, list(range(10, 60))])
    settings = GenerationSettings(max_new_tokens=40, stop_loops=3)
    ended, looped, cut = engine.complete(["a", "b", "c"], settings, seed=7)

    assert (ended.text, ended.new_tokens, ended.stop_reason) == ("Hi, my parcel is late", len(words) + 1, "eos")
    assert looped.stop_reason == generation.STOP_LOOP
    assert looped.new_tokens == loops.first_loop_lengths([loop[:40]], 3, [eos])[0]
    assert (cut.new_tokens, cut.stop_reason) == (40, generation.STOP_LENGTH)
    assert engine.seeds == [generation.batch_seed(7, index) for index in range(3)]
    with pytest.raises(ValueError, match="does not apply num_beams"):
        engine.complete(["a"], GenerationSettings(num_beams=2), seed=0)
