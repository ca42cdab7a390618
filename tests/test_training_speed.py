"""The fast path (padding-free batches, LM head on the completion only) learns what plain SFTTrainer learns: the same
loss and the same gradients on the same batch. Its speed is measured in benchmarks/train_bench.py, not here."""

import pytest
import torch
from trl import SFTTrainer

from dialoghub import prompts
from dialoghub.training import build_trainer
from dialoghub.training_kernels import VARLEN_SDPA, AdapterSFTTrainer
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
