"""The fast path (padding-free batches, LM head on the completion only) learns what plain SFTTrainer learns: the same
loss and the same gradients on the same batch. Its speed is measured in benchmarks/train_bench.py, not here."""

import pytest
import torch
from trl import SFTTrainer

from dialoghub.models import prompts
from dialoghub.sft.trainer import SEGMENT_LENGTHS, VARLEN_SDPA, AdapterSFTTrainer, SharedPrefixCollator
from dialoghub.sft.training import build_trainer, encode_shared_prompt
from tests.tiny_models import save_tiny_base, tiny_run_args, tiny_tweetsumm

BATCH = 4


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return save_tiny_base(tmp_path_factory.mktemp("base"))


def make_trainer(base_dir, output_dir, task: str, fast: bool):
    script_args, training_args, model_args = tiny_run_args(
        str(base_dir),
        "unused",
        output_dir,
        "--task", task,
        "--completion_logits_only", str(fast),
        "--flatten_batches", str(fast),
    )  # fmt: skip
    rows = prompts.to_sft_dataset(tiny_tweetsumm()["train"], task, all_summaries=True)
    trainer_class = AdapterSFTTrainer if fast else SFTTrainer
    return build_trainer(script_args, training_args, model_args, rows, trainer_class=trainer_class)


def lora_parameters(trainer) -> dict[str, torch.nn.Parameter]:
    return {name: param for name, param in trainer.model.named_parameters() if "lora_" in name}


@pytest.mark.parametrize("task", prompts.TASKS)
def test_fast_path_gives_the_plain_loss_and_gradients(base_dir, tmp_path, task):
    plain = make_trainer(base_dir, tmp_path / "plain", task, fast=False)
    fast = make_trainer(base_dir, tmp_path / "fast", task, fast=True)
    assert type(plain) is SFTTrainer and fast.padding_free and not plain.padding_free
    assert fast.model.get_base_model().config._attn_implementation == VARLEN_SDPA

    # LoRA B starts at zero, which would leave A without gradient: give both models the same random adapter.
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in lora_parameters(plain).items():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
            lora_parameters(fast)[name].copy_(param)

    examples = [plain.train_dataset[i] for i in range(BATCH)]
    assert examples == [fast.train_dataset[i] for i in range(BATCH)]
    lengths = {len(example["input_ids"]) for example in examples}
    assert len(lengths) > 1, "the batch must need padding for the comparison to mean anything"
    examples = [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples]

    results = {}
    for name, trainer in (("plain", plain), ("fast", fast)):
        batch = trainer.data_collator(examples)
        trainer.model.train()
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        results[name] = loss.detach(), {k: p.grad.clone() for k, p in lora_parameters(trainer).items()}
    plain_batch, fast_batch = plain.data_collator(examples), fast.data_collator(examples)
    assert "attention_mask" in plain_batch and plain_batch["input_ids"].shape[0] == BATCH
    total_tokens = sum(len(example["input_ids"]) for example in examples)
    assert "attention_mask" not in fast_batch and fast_batch["input_ids"].shape == (1, total_tokens)

    (plain_loss, plain_grads), (fast_loss, fast_grads) = results["plain"], results["fast"]
    torch.testing.assert_close(fast_loss, plain_loss, rtol=1e-5, atol=1e-6)
    assert plain_grads.keys() == fast_grads.keys()
    for name in plain_grads:
        scale = plain_grads[name].abs().max()
        assert scale > 0, name
        # Summation order differs (one row vs four, fewer LM-head rows): float32 rounding, relative to the gradient
        assert (fast_grads[name] - plain_grads[name]).abs().max() <= 1e-4 * scale, name


def test_eval_loss_is_the_same(base_dir, tmp_path):
    plain = make_trainer(base_dir, tmp_path / "plain", prompts.SUMMARIZE, fast=False)
    fast = make_trainer(base_dir, tmp_path / "fast", prompts.SUMMARIZE, fast=True)
    eval_rows = prompts.to_sft_dataset(tiny_tweetsumm()["validation"], prompts.SUMMARIZE)
    plain_loss = plain.evaluate(eval_rows)["eval_loss"]
    fast_loss = fast.evaluate(eval_rows)["eval_loss"]
    assert fast_loss == pytest.approx(plain_loss, rel=1e-5)


def test_shared_prompt_sequence_gives_the_separate_references_loss_and_gradients(base_dir, tmp_path):
    """All references of a dialog in one sequence (the dialog computed once) = one sequence per reference."""
    fast = make_trainer(base_dir, tmp_path / "fast", prompts.SUMMARIZE, fast=True)
    rows = tiny_tweetsumm()["train"]
    dialog = next(index for index, row in enumerate(rows) if len(row["summaries"]) > 1)
    tokenizer = fast.processing_class
    shared = encode_shared_prompt(rows.select([dialog]), prompts.SUMMARIZE, tokenizer, 512, all_summaries=True)
    assert len(shared) == 1 and len(shared[0][SEGMENT_LENGTHS]) == 3  # the shared prompt + one segment per summary
    # trl's tokenization of prompt + completion of each reference, rebuilt from the shared sequence's segments
    ids, (shared_length, *segment_lengths) = shared[0]["input_ids"], shared[0][SEGMENT_LENGTHS]
    starts = [shared_length + sum(segment_lengths[:index]) for index in range(len(segment_lengths))]
    expected = [
        ids[:shared_length] + ids[start : start + length]
        for start, length in zip(starts, segment_lengths, strict=True)
    ]
    separate = [
        {"input_ids": example["input_ids"], "labels": example["labels"]}
        for example in fast.train_dataset
        if example["input_ids"] in expected
    ]
    assert [example["input_ids"] for example in separate] == expected

    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in lora_parameters(fast).values():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    results = []
    for batch in (
        fast.data_collator(separate),
        SharedPrefixCollator(tokenizer.pad_token_id)([{key: shared[0][key] for key in shared.column_names}]),
    ):
        fast.model.zero_grad()
        fast.model.train()
        loss = fast.compute_loss(fast.model, batch)
        loss.backward()
        results.append((loss.detach(), {k: p.grad.clone() for k, p in lora_parameters(fast).items()}))
    (separate_loss, separate_grads), (shared_loss, shared_grads) = results
    torch.testing.assert_close(shared_loss, separate_loss, rtol=1e-5, atol=1e-6)
    for name, grad in separate_grads.items():
        assert grad.abs().max() > 0, name
        assert (shared_grads[name] - grad).abs().max() <= 1e-4 * grad.abs().max(), name


def test_a_dialog_too_long_loses_middle_turns_never_its_summary(base_dir, tmp_path):
    fast = make_trainer(base_dir, tmp_path / "fast", prompts.SUMMARIZE, fast=True)
    rows = tiny_tweetsumm()["train"]
    long_rows = rows.filter(lambda row: len(row["dialogue"]) == 4)
    full = encode_shared_prompt(long_rows, prompts.SUMMARIZE, fast.processing_class, None, all_summaries=True)

    def attended(example):  # the longest sequence one summary sees: the prompt and itself
        return example[SEGMENT_LENGTHS][0] + max(example[SEGMENT_LENGTHS][1:], default=0)

    budget = max(attended(example) for example in full) - 12
    fitted = encode_shared_prompt(long_rows, prompts.SUMMARIZE, fast.processing_class, budget, all_summaries=True)
    assert len(fitted) == len(full)  # nothing dropped
    assert any(example["cut_turns"] for example in fitted)
    for before, after in zip(full, fitted, strict=True):
        completion = [label for label in before["labels"] if label != -100]
        assert [label for label in after["labels"] if label != -100] == completion  # every summary token kept
        assert attended(after) <= budget
