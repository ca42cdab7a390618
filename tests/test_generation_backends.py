"""The generation backends of `dialoghub.models.backends` on the tiny random models: the vectorised loop detector
against the reference one, the GGUF export against transformers' own GGUF reader."""

from __future__ import annotations

import random

import pytest
import torch

from dialoghub.models import generation
from dialoghub.models.backends import gguf_export, loops
from tests.tiny_models import save_tiny_base


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
