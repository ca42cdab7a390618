"""`share_prompt` computes trl's GRPO step, not an approximation of it: on the same batch (prompts, completions,
advantages fixed here, no sampling), the shared-prompt path gives trl's per-token log-probs of the policy and of the
reference (the frozen copy of the SFT adapter), trl's loss and KL, and the same LoRA gradients. Its speed is measured
in benchmarks/grpo_bench.py, not here."""

import copy
from functools import partial

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOTrainer
from trl.trainer.utils import use_adapter

from dialoghub.core.paths import REPO_ROOT
from dialoghub.reward.trainer import (
    RewardGRPOConfig,
    SharedPromptGRPOTrainer,
    attention_implementation,
    generate_with_shared_prompts,
    group_micro_batches,
    prompt_groups,
    shared_prompt_batch,
)
from dialoghub.reward.training import SFT_ADAPTER, check_reference_is_the_sft_policy, parse_args
from dialoghub.sft.trainer import SHARED_PREFIX_SEGMENTS, VARLEN_SDPA
from tests.tiny_models import save_tiny_base

NUM_GENERATIONS = 3
# Prompts of different lengths (left padding), three completions each of different lengths (right padding), one
# of them empty after masking (a truncated completion that mask_truncated_completions zeroes)
PROMPTS = [
    "Summarize: my phone is broken.",
    "Summarize the conversation. Customer: my parcel did not arrive. Agent: we will check the tracking.",
    "Summarize: card locked, agent will unlock it, customer thanks them.",
    "Summarize: the flight is late again, the customer asks for a refund.",
]
COMPLETION_LENGTHS = [[5, 9, 2], [7, 0, 9], [1, 4, 6], [9, 9, 3]]
COMPLETION_WIDTH = 9
RECIPE = "models_repo/summarizer-grpo-lora/recipe.yaml"


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return save_tiny_base(tmp_path_factory.mktemp("base"))


def length_reward(completions, **kwargs):
    return [float(len(completion)) for completion in completions]


def make_trainer(base_dir, output_dir, share_prompt: bool, **overrides):
    """A GRPO trainer of the tiny base with a random (non-zero) SFT adapter loaded trainable, as load_policy gives
    it: trl copies it into the frozen `ref` adapter, the KL reference."""
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="sdpa")
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0, init_lora_weights=False)
    policy = get_peft_model(base, config)
    settings = {
        "output_dir": str(output_dir),
        "use_cpu": True,
        "bf16": False,
        "num_generations": NUM_GENERATIONS,
        "per_device_train_batch_size": len(PROMPTS) * NUM_GENERATIONS,
        "gradient_accumulation_steps": 1,
        "max_completion_length": COMPLETION_WIDTH,
        "beta": 0.04,
        "loss_type": "dapo",
        "report_to": "none",
        "share_prompt": share_prompt,
        "seed": 0,
    } | overrides
    trainer_class = SharedPromptGRPOTrainer if share_prompt else GRPOTrainer
    trainer = trainer_class(
        model=policy,
        reward_funcs=[length_reward],
        args=RewardGRPOConfig(**settings),
        train_dataset=Dataset.from_list([{"prompt": prompt} for prompt in PROMPTS]),
        processing_class=AutoTokenizer.from_pretrained(base_dir, padding_side="left"),
    )
    check_reference_is_the_sft_policy(trainer)
    # The policy a few steps after the start: its adapter no longer equals the reference copy (a non-zero KL)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in lora_parameters(trainer).values():
            param.add_(torch.randn(param.shape, generator=generator) * 0.01)
    trainer.current_gradient_accumulation_steps = trainer.args.gradient_accumulation_steps
    return trainer


def lora_parameters(trainer) -> dict[str, torch.nn.Parameter]:
    return {name: param for name, param in trainer.model.named_parameters() if "lora_" in name and param.requires_grad}


def prepared_batch(trainer) -> dict[str, torch.Tensor]:
    """trl's inputs for the loss (`_generate_and_score_completions`' layout), with fixed completions and advantages:
    prompts left-padded, completions right-padded, each prompt's completions in consecutive rows."""
    tokenizer = trainer.processing_class
    generator = torch.Generator().manual_seed(2)
    prompt_ids = [tokenizer(prompt)["input_ids"] for prompt in PROMPTS]
    assert len({len(ids) for ids in prompt_ids}) == len(PROMPTS), "the prompts must need left padding"
    width = max(len(ids) for ids in prompt_ids)
    rows = []
    for ids, lengths in zip(prompt_ids, COMPLETION_LENGTHS, strict=True):
        for length in lengths:
            completion = torch.randint(3, len(tokenizer), (COMPLETION_WIDTH,), generator=generator)
            completion[length:] = tokenizer.pad_token_id
            rows.append(([tokenizer.pad_token_id] * (width - len(ids)) + ids, len(ids), completion, length))
    completion_mask = torch.stack([(torch.arange(COMPLETION_WIDTH) < length).long() for *_, length in rows])
    return {
        "prompt_ids": torch.tensor([ids for ids, *_ in rows]),
        "prompt_mask": torch.stack([(torch.arange(width) >= width - n).long() for _, n, *_ in rows]),
        "completion_ids": torch.stack([completion for _, _, completion, _ in rows]),
        "completion_mask": completion_mask,
        "advantages": torch.randn(len(rows), generator=generator),
        "num_items_in_batch": completion_mask.sum(),
    }


def reference_logps(trainer, inputs) -> torch.Tensor:
    """The reference pass as `_generate_and_score_completions` runs it: the `ref` adapter, no gradient."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad(), use_adapter(model, adapter_name="ref"):
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model,
            torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1),
            torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1),
            inputs["completion_ids"].size(1),
            batch_size=trainer.args.per_device_train_batch_size,
        )
    return logps


def policy_logps(trainer, inputs) -> tuple[torch.Tensor, torch.Tensor]:
    logps, entropies, _ = trainer._get_per_token_logps_and_entropies(
        trainer.model,
        torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1),
        torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1),
        inputs["completion_ids"].size(1),
        compute_entropy=True,
    )
    return logps, entropies


def step(trainer, micro_batches) -> dict:
    """Reference log-probs, then loss and backward on each micro-batch as trl's training step does."""
    trainer.model.zero_grad()
    trainer.model.train()
    losses = []
    for inputs in micro_batches:
        inputs = inputs | {"ref_per_token_logps": reference_logps(trainer, inputs)}
        loss = trainer.compute_loss(trainer.model, inputs)
        loss.backward()
        losses.append(loss.detach())
    return {
        "loss": torch.stack(losses).sum(),
        "kl": trainer._metrics["train"]["kl"][-len(micro_batches) :],
        "grads": {name: param.grad.clone() for name, param in lora_parameters(trainer).items()},
    }


def count_packed_passes(trainer) -> list[int]:
    """A list that grows by one at each forward pass of `trainer` on shared-prompt sequences (none would fall back to
    trl's computation, and the comparisons would mean nothing)."""
    passes = []
    packed = trainer.shared_prompt_logps

    def counted(*args, **kwargs):
        passes.append(1)
        return packed(*args, **kwargs)

    trainer.shared_prompt_logps = counted
    return passes


# The packed row and trl's rows multiply matrices of other shapes, so the kernels sum in another order: float32
# rounding. With AVX-512 kernels log-probs near -18 differ by up to 2e-5 (1.1e-6 relative); 1e-5 relative leaves 4x.
OTHER_SHAPES_FLOAT32 = {"rtol": 1e-5, "atol": 1e-5}


def assert_same_gradients(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys() and expected
    for name, grad in expected.items():
        scale = grad.abs().max()
        assert scale > 0, name
        # Summation order differs (one packed row, fewer LM-head rows): float32 rounding, relative to the gradient
        assert (actual[name] - grad).abs().max() <= 1e-4 * scale, name


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_shared_prompt_path_gives_trls_logps_loss_kl_and_gradients(base_dir, tmp_path, temperature):
    plain = make_trainer(base_dir, tmp_path / "plain", share_prompt=False, temperature=temperature)
    shared = make_trainer(base_dir, tmp_path / "shared", share_prompt=True, temperature=temperature)
    assert type(plain) is GRPOTrainer and isinstance(shared, SharedPromptGRPOTrainer)
    packed_passes = count_packed_passes(shared)
    inputs = prepared_batch(plain)
    packed, _ = shared_prompt_batch(
        torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1),
        torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1),
        COMPLETION_WIDTH,
        shared.processing_class.pad_token_id,
    )
    # One sequence per prompt, its three completions after one copy of it: fewer tokens than trl's rows
    assert [len(segments) for segments in packed[SHARED_PREFIX_SEGMENTS]] == [1 + NUM_GENERATIONS] * len(PROMPTS)
    assert packed["input_ids"].size(1) < int(inputs["prompt_mask"].sum() + inputs["completion_mask"].sum())

    plain_ref, shared_ref = reference_logps(plain, inputs), reference_logps(shared, inputs)
    torch.testing.assert_close(shared_ref, plain_ref, **OTHER_SHAPES_FLOAT32)
    plain.model.train(), shared.model.train()
    (plain_logps, plain_entropy), (shared_logps, shared_entropy) = (
        policy_logps(plain, inputs),
        policy_logps(shared, inputs),
    )
    assert shared_logps.requires_grad
    torch.testing.assert_close(shared_logps, plain_logps, **OTHER_SHAPES_FLOAT32)
    # Entropy sums p * log p over the whole vocabulary: more rounding than one log-prob
    torch.testing.assert_close(shared_entropy, plain_entropy, **(OTHER_SHAPES_FLOAT32 | {"rtol": 3e-5}))
    assert (plain_logps != 0).sum() == inputs["completion_mask"].sum(), "masked positions are zero in both"
    assert (plain_ref - plain_logps).abs().max() > 1e-3, "the policy must differ from its reference"

    expected, actual = step(plain, [inputs]), step(shared, [inputs])
    torch.testing.assert_close(actual["loss"], expected["loss"], rtol=1e-5, atol=1e-5)
    assert expected["kl"][0] > 0
    assert actual["kl"] == pytest.approx(expected["kl"], rel=1e-4, abs=1e-6)
    assert_same_gradients(actual["grads"], expected["grads"])
    assert all(f".{SFT_ADAPTER}." in name for name in expected["grads"])
    assert len(packed_passes) == 4, "reference and policy, twice: all through the shared-prompt path"


def test_siblings_that_see_each_other_break_the_equality(base_dir, tmp_path):
    """The test above can fail: with one segment per sequence (each completion attending to the completions before
    it), only every prompt's first completion keeps trl's log-probs."""
    plain = make_trainer(base_dir, tmp_path / "plain", share_prompt=False)
    shared = make_trainer(base_dir, tmp_path / "shared", share_prompt=True)
    inputs = prepared_batch(plain)
    input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    attention_mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)

    def siblings_visible(batch):
        return batch | {SHARED_PREFIX_SEGMENTS: [[sum(segments)] for segments in batch[SHARED_PREFIX_SEGMENTS]]}

    with torch.no_grad():
        expected, _ = policy_logps(plain, inputs)
        wrong, _ = shared.shared_prompt_logps(
            shared.model, input_ids, attention_mask, COMPLETION_WIDTH, siblings_visible
        )
    first = torch.arange(len(wrong)) % NUM_GENERATIONS == 0
    torch.testing.assert_close(wrong[first], expected[first], **OTHER_SHAPES_FLOAT32)
    later = ~first & (inputs["completion_mask"].sum(1) > 0)
    assert (wrong[later] - expected[later]).abs().max() > 1e-3


def test_micro_batches_grouped_by_prompt_give_the_steps_gradient(base_dir, tmp_path):
    """Two micro-batches per step: trl cuts the shuffled generation batch at random, share_prompt re-cuts it with each
    prompt's completions together. With the recipe's loss (dapo) the step's loss and gradient are the same sums."""
    settings = {"per_device_train_batch_size": len(PROMPTS) * NUM_GENERATIONS // 2, "gradient_accumulation_steps": 2}
    plain = make_trainer(base_dir, tmp_path / "plain", share_prompt=False, **settings)
    shared = make_trainer(base_dir, tmp_path / "shared", share_prompt=True, **settings)
    assert shared.regroups_micro_batches and plain.args.steps_per_generation == 2
    packed_passes = count_packed_passes(shared)
    inputs = prepared_batch(plain)
    permutation = torch.randperm(len(inputs["advantages"]), generator=torch.Generator().manual_seed(3))
    shuffled = {key: value[permutation] if value.ndim else value for key, value in inputs.items()}
    trl_cut = [{key: value[rows] if value.ndim else value for key, value in shuffled.items()} for rows in (
        slice(0, 6), slice(6, 12))]  # fmt: skip
    grouped = group_micro_batches(trl_cut)
    for micro_batch in grouped:  # whole groups: two prompts of three completions each
        groups = prompt_groups(micro_batch["prompt_ids"], micro_batch["prompt_mask"])
        assert [len(rows) for _, rows in groups] == [NUM_GENERATIONS, NUM_GENERATIONS]
    assert any(
        len(prompt_groups(micro_batch["prompt_ids"], micro_batch["prompt_mask"])) > 2 for micro_batch in trl_cut
    ), "trl's cut must split some prompt's completions for the comparison to mean anything"

    expected, actual = step(plain, trl_cut), step(shared, grouped)
    torch.testing.assert_close(actual["loss"], expected["loss"], rtol=1e-5, atol=1e-5)
    assert_same_gradients(actual["grads"], expected["grads"])
    assert len(packed_passes) == 4  # reference and policy of each micro-batch


def test_share_prompt_is_off_by_default_and_on_in_the_recipe(tmp_path):
    """trl's own step unless a recipe asks; the pipeline's recipe asks (the step is the same, tested below)."""
    recipe = ["--config", str(REPO_ROOT / RECIPE), "--output_dir", str(tmp_path)]
    _, training_args, _ = parse_args(recipe)
    assert isinstance(training_args, RewardGRPOConfig) and training_args.share_prompt is True
    _, training_args, _ = parse_args([*recipe, "--share_prompt", "false"])
    assert training_args.share_prompt is False
    assert RewardGRPOConfig.__dataclass_fields__["share_prompt"].default is False


def record_packed_groups(trainer, passes: list) -> None:
    """Append (with gradient, sizes of its prompt groups) to `passes` at each shared-prompt pass of `trainer`."""
    packed = trainer.shared_prompt_logps

    def recorded(model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        groups = prompt_groups(input_ids[:, :-logits_to_keep], attention_mask[:, :-logits_to_keep])
        passes.append((torch.is_grad_enabled(), sorted(len(rows) for _, rows in groups)))
        return packed(model, input_ids, attention_mask, logits_to_keep, *args, **kwargs)

    trainer.shared_prompt_logps = recorded


def test_generation_computes_each_prompt_once_on_the_models_own_logits(base_dir, tmp_path):
    """Left-padded prompts repeated as trl repeats them: the distinct prompts go through the model once, all but
    their last token, then every step is one token per row, and each sampled token is drawn from the logits that the
    model, run without a cache on the whole row, gives its position (equal up to float rounding: the last prompt token
    is computed in a step of its own, as in any cached decoding, so a near-tie may sample differently)."""
    trainer = make_trainer(base_dir, tmp_path, share_prompt=True)
    model, tokenizer = trainer.accelerator.unwrap_model(trainer.model), trainer.processing_class
    encoded = tokenizer(PROMPTS, padding=True, return_tensors="pt")
    input_ids = encoded["input_ids"].repeat_interleave(NUM_GENERATIONS, dim=0)
    attention_mask = encoded["attention_mask"].repeat_interleave(NUM_GENERATIONS, dim=0)
    assert not attention_mask.all(), "the prompts must need left padding"
    config = copy.deepcopy(trainer.generation_config)
    config.min_new_tokens = config.max_new_tokens  # every row runs to the end: no padding after an end of sequence
    shapes = []
    hook = model.get_base_model().register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    torch.manual_seed(3)
    try:
        with attention_implementation(model.get_base_model(), "sdpa"):
            generated = generate_with_shared_prompts(
                model, model.generate, input_ids=input_ids, attention_mask=attention_mask,
                generation_config=config, output_logits=True, return_dict_in_generate=True,
            )  # fmt: skip
    finally:
        hook.remove()
    new_tokens = generated.sequences.size(1) - input_ids.size(1)
    assert new_tokens == COMPLETION_WIDTH
    assert shapes == [(len(PROMPTS), input_ids.size(1) - 1)] + [(len(input_ids), 1)] * new_tokens
    mask = torch.cat([attention_mask, torch.ones(len(input_ids), new_tokens, dtype=attention_mask.dtype)], dim=1)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    with torch.no_grad(), attention_implementation(model.get_base_model(), "sdpa"):
        whole_rows = model(input_ids=generated.sequences, attention_mask=mask, position_ids=positions).logits
    # Within the rounding of cached decoding itself (plain `generate` differs from the whole rows by about 3e-5 here)
    torch.testing.assert_close(
        torch.stack(generated.logits, dim=1), whole_rows[:, -new_tokens - 1 : -1], atol=1e-4, rtol=1e-4
    )


def record_prompt_pass(rows: list[int], module, args, kwargs) -> None:
    cache = kwargs.get("past_key_values")
    if cache is not None and cache.get_seq_length() == 0:
        rows.append(kwargs["input_ids"].size(0))


def test_a_training_step_with_share_prompt_is_trls_step(base_dir, tmp_path):
    """Through trl's own loop (sampling, rewards, the reference pass, the shuffle, two micro-batches): the same
    completions, and, with plain SGD, the same update of the adapter."""
    settings = {
        "per_device_train_batch_size": len(PROMPTS) * NUM_GENERATIONS // 2,
        "gradient_accumulation_steps": 2,
        "max_steps": 1,
        "optim": "sgd",
        # Large enough that the update stands far above the parameters' float32 rounding (values near 1)
        "learning_rate": 10.0,
        "logging_steps": 1,
        "save_strategy": "no",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }
    updates, completions, passes, generation_attention = {}, {}, [], []
    for share_prompt in (False, True):
        trainer = make_trainer(base_dir, tmp_path / str(share_prompt), share_prompt=share_prompt, **settings)
        before = {name: param.detach().clone() for name, param in lora_parameters(trainer).items()}
        if share_prompt:
            record_packed_groups(trainer, passes)
            generate = trainer._generate_single_turn  # trl's sampling, inside `_generate`

            def generate_recording_attention(*args, _generate=generate, _config=trainer.model.config, **kwargs):
                generation_attention.append(_config._attn_implementation)
                return _generate(*args, **kwargs)

            trainer._generate_single_turn = generate_recording_attention
            prompt_passes = []  # rows of each forward that starts a cache: the generation's prompt pass
            trainer.model.get_base_model().register_forward_pre_hook(
                partial(record_prompt_pass, prompt_passes), with_kwargs=True
            )
        trainer.train()
        after = lora_parameters(trainer)
        updates[share_prompt] = {name: after[name].detach() - value for name, value in before.items()}
        completions[share_prompt] = list(trainer._logs["completion"])
    assert completions[True] == completions[False] and len(completions[True]) == len(PROMPTS) * NUM_GENERATIONS
    # The reference pass on each half of the generation batch, then each micro-batch's policy pass: whole groups
    assert passes == [(False, [NUM_GENERATIONS] * 2)] * 2 + [(True, [NUM_GENERATIONS] * 2)] * 2
    assert_same_gradients(updates[True], updates[False])
    # Generation with the model's own attention; the packed passes with the per-segment one
    assert generation_attention == ["sdpa"]
    assert prompt_passes == [len(PROMPTS)]
    assert trainer.model.get_base_model().config._attn_implementation == VARLEN_SDPA
