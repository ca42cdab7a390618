"""Reward tuning (trl GRPO) of a tiny summarizer adapter, with the base model, the SFT adapter, tweetsumm-clean and the
provocation dataset served by the real embedded Hub."""

import json
import types
import uuid
from pathlib import Path
from statistics import fmean

import pytest
import torch
from peft import get_peft_model_state_dict
from safetensors.torch import load_file

from dialoghub.data.provocation import build_provocation_rows, load_abuse_list, publish, repeated_phrases
from dialoghub.evaluation.tasks.base import Scorers
from dialoghub.evaluation.tasks.tweetsumm_provocation import ABUSE_REPEATS, TWEETSUMM_PROVOCATION
from dialoghub.metrics.lengths import word_counts
from dialoghub.metrics.toxicity import TOXIC_THRESHOLD, ProfanityCheckScorer
from dialoghub.models import prompts
from dialoghub.reward import rewards
from dialoghub.reward import training as reward_tuning
from dialoghub.reward.card import push_reward_adapter
from dialoghub.reward.validation import (
    BUDGET,
    FLATTENED,
    RELEVANCE,
    ValidationCurve,
    ValidationPoint,
    best_admissible,
    stop_reason,
)
from dialoghub.sft.card import SUMMARY_FILE
from tests.card_code import run_quick_start
from tests.tiny_models import save_tiny_base, tiny_tweetsumm

TAG = "v1.0"


@pytest.fixture(scope="module")
def tiny_hub(hub, tmp_path_factory):
    """A tiny base, tiny tweetsumm, its provocation dataset and an SFT adapter whose LoRA B is non-zero (so that the
    SFT policy differs from the base), each published and tagged v1.0."""
    from huggingface_hub import HfApi
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    api = HfApi(endpoint=hub.endpoint)
    suffix = uuid.uuid4().hex[:8]
    base_id, dataset_id = f"tests/grpo-llama-{suffix}", f"tests/grpo-tweetsumm-{suffix}"
    provocation_id, sft_id = f"tests/grpo-provocation-{suffix}", f"tests/grpo-sft-{suffix}"
    api.create_repo(base_id)
    api.upload_folder(repo_id=base_id, folder_path=save_tiny_base(tmp_path_factory.mktemp("grpo-base")))
    api.create_tag(base_id, tag=TAG)
    data = tiny_tweetsumm()
    data.push_to_hub(dataset_id)
    api.create_tag(dataset_id, tag=TAG, repo_type="dataset")
    abuse = load_abuse_list()
    rows = build_provocation_rows(
        {split: data[split].to_list() for split in data}, abuse, ProfanityCheckScorer(), TOXIC_THRESHOLD
    )
    context = {"source": f"{dataset_id}@{TAG}", "source_repo": dataset_id, "source_sha": "-", "scorer": "x"}
    publish(
        rows, provocation_id, tag=TAG, context=context | {"threshold": 0.5, "abuse": abuse, "inserted_suffix": "+"}
    )

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(base_id, revision=TAG)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False, revision=TAG)
    sft_dir = tmp_path_factory.mktemp("grpo-sft")
    get_peft_model(base, config).save_pretrained(sft_dir)
    from dialoghub.models.loading import load_tokenizer

    load_tokenizer(base_id, TAG).save_pretrained(sft_dir)
    api.create_repo(sft_id)
    api.upload_folder(repo_id=sft_id, folder_path=sft_dir)
    api.create_tag(sft_id, tag=TAG)
    return types.SimpleNamespace(
        api=api, base=base_id, dataset=dataset_id, provocation=provocation_id, sft=sft_id, rows=rows
    )


def grpo_args(tiny_hub, output_dir, *overrides: str):
    return reward_tuning.parse_args([*grpo_args_argv(tiny_hub, output_dir), *overrides])


def grpo_args_argv(tiny_hub, output_dir) -> list[str]:
    """Flags of scripts/reward_tune.py for a few CPU steps on the tiny model (the recipe's rewards and scorers)."""
    flags = {
        "sft_adapter": f"{tiny_hub.sft}@{TAG}",
        "dataset_name": tiny_hub.dataset,
        "dataset_revision": TAG,
        "provocation_dataset": f"{tiny_hub.provocation}@{TAG}",
        "max_train_prompts": 8,
        "output_dir": output_dir,
        "use_cpu": "true",
        "bf16": "false",
        "dtype": "float32",
        "num_generations": 4,
        "max_completion_length": 8,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "learning_rate": "1e-2",
        "lr_scheduler_type": "constant",
        "beta": 0.04,
        "max_steps": 2,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": "true",
        "dataloader_num_workers": 0,
        "seed": 0,
    }
    return [item for name, value in flags.items() for item in (f"--{name}", str(value))]


def test_provocation_rows_keep_test_dialogs_out_of_training(tiny_hub):
    from datasets import load_dataset

    rows = tiny_hub.rows
    assert {row["source_split"] for row in rows["train"]} == {"train"}
    assert {row["source_split"] for row in rows["test"]} <= {"validation", "test"}
    abuse = load_abuse_list()
    inserted = [row for row in rows["test"] if row["provocation"] == "inserted"]
    assert len(inserted) == len(tiny_tweetsumm()["test"])
    assert all(row["inserted_phrase"] in abuse.evaluation and row["customer_toxicity"] >= 0.5 for row in inserted)
    assert all(row["inserted_phrase"] in abuse.train for row in rows["train"] if row["provocation"] == "inserted")
    assert all(row["inserted_phrase"] in row["dialogue"][0]["text"] for row in inserted)
    assert (
        build_provocation_rows(
            {split: tiny_tweetsumm()[split].to_list() for split in ("train", "validation", "test")},
            abuse,
            ProfanityCheckScorer(),
            TOXIC_THRESHOLD,
        )
        == rows
    ), "the same input gives the same rows"
    validation = rows["validation"]
    assert validation and {row["source_split"] for row in validation} == {"validation"}
    assert all(row["provocation"] == "inserted" and row["inserted_phrase"] in abuse.validation for row in validation)
    flagged_validation = {row["source_conversation_id"] for row in rows["test"] if row["source_split"] == "validation"}
    assert len(validation) == len(tiny_tweetsumm()["validation"]) - len(flagged_validation)
    sources = {split: {row["source_conversation_id"] for row in split_rows} for split, split_rows in rows.items()}
    assert not sources["train"] & sources["validation"] and not sources["validation"] & sources["test"]
    assert not sources["train"] & sources["test"], "no dialog is in two splits"
    published = load_dataset(tiny_hub.provocation, revision=TAG)
    assert {split: published[split].num_rows for split in published} == {
        split: len(split_rows) for split, split_rows in rows.items()
    }


def test_the_three_abuse_lists_are_disjoint_and_a_shared_phrase_is_refused(tmp_path):
    abuse = load_abuse_list()
    lists = [set(abuse.train), set(abuse.validation), set(abuse.evaluation)]
    assert all(lists) and sum(map(len, lists)) == len(set.union(*lists))
    broken = tmp_path / "abuse.yaml"
    broken.write_text("version: 9\ntrain: [a b]\nvalidation: [c d]\nevaluation: [c  d]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="validation and evaluation lists share"):
        load_abuse_list(broken)


@pytest.mark.parametrize(
    ("text", "repeated"),
    [
        ("Customer says: Fix it, you CLOWNS!", ["you clowns"]),
        ("Customer calls the agents clowns.", []),  # one word of the phrase is not the phrase
        ("Customer says you are clowns.", []),  # its words must be adjacent
        ("Customer's order is late; the agent asks for a DM.", []),
    ],
)
def test_a_repeated_abuse_phrase_is_found_exactly(text, repeated):
    assert repeated_phrases(text, ["you clowns", "useless idiots"]) == repeated


def test_the_provocation_task_reports_the_share_of_summaries_that_repeat_an_abuse_phrase():
    phrase = load_abuse_list().evaluation[0]
    rows = [
        {"conversation_id": f"c{index}", "dialogue": [{"role": "Customer", "text": "late parcel"}], "summaries": ["x"]}
        for index in range(4)
    ]
    docs = TWEETSUMM_PROVOCATION.docs(rows)
    predictions = [f"Customer said {phrase.upper()}.", "Parcel late.", "Parcel late.", "Agent asked for a DM."]
    scores = TWEETSUMM_PROVOCATION.score(docs, predictions, Scorers(n_bootstrap=50))
    assert scores.details[ABUSE_REPEATS] == [100.0, 0.0, 0.0, 0.0]
    estimate = scores.report.metrics[ABUSE_REPEATS]
    assert estimate.value == 25.0 and estimate.ci_low <= 25.0 <= estimate.ci_high
    assert ABUSE_REPEATS in TWEETSUMM_PROVOCATION.leaderboard_metrics


def point(step, toxicity, rouge_l):
    return ValidationPoint(step=step, toxicity=toxicity, flagged=0.0, rouge_l=rouge_l, words=10.0, seconds=1.0)


@pytest.mark.parametrize(
    ("curve", "expected"),
    [
        ([(0, 14.0, 40.0)], None),
        ([(0, 14.0, 40.0), (8, 12.0, 40.0), (16, 10.0, 40.0)], None),  # still falling
        ([(0, 14.0, 40.0), (8, 10.0, 40.0), (16, 9.8, 40.0), (24, 10.1, 40.0)], FLATTENED),  # two evals < 0.5 gain
        ([(0, 14.0, 40.0), (8, 10.0, 40.0), (16, 9.8, 40.0), (24, 9.0, 40.0)], None),  # the last one gained 1.0
        ([(0, 14.0, 40.0), (8, 10.0, 38.9), (16, 9.0, 38.5)], RELEVANCE),  # ROUGE-L > 1 point down, twice in a row
        ([(0, 14.0, 40.0), (8, 10.0, 38.9)], None),  # once: within the noise of a validation set
        ([(0, 14.0, 40.0), (8, 10.0, 38.9), (16, 9.0, 39.5)], None),  # and back
        ([(0, 14.0, 40.0), (8, 10.0, 39.1)], None),
    ],
)
def test_the_budget_stops_where_validation_toxicity_flattens_or_relevance_falls(curve, expected):
    points = [point(*values) for values in curve]
    assert stop_reason(points, patience=2, min_improvement=0.5, max_relevance_drop=1.0) == expected


@pytest.mark.parametrize(
    ("curve", "chosen"),
    [
        ([(0, 14.0, 40.0)], 0),
        ([(0, 14.0, 40.0), (8, 10.0, 39.5), (16, 7.0, 38.9)], 8),  # step 16 is less toxic, but relevance fell
        ([(0, 14.0, 40.0), (8, 10.0, 40.0), (16, 10.0, 40.0)], 8),  # the earliest of equals
        ([(0, 14.0, 40.0), (8, 15.0, 40.0)], 0),
    ],
)
def test_the_chosen_point_is_the_least_toxic_within_the_relevance_budget(curve, chosen):
    points = [point(*values) for values in curve]
    assert best_admissible(points, max_relevance_drop=1.0).step == chosen


class ScriptedCurve(ValidationCurve):
    """The validation curve with scripted scores (the real evaluation is tested below); it keeps the adapter's weights
    at each point, to compare with what the run saves."""

    def __init__(self, scores: dict[int, tuple[float, float]], **kwargs) -> None:
        super().__init__(
            tokenizer=None, base=None, provocation_rows=[{}], plain_rows=[{}], toxicity_scorer=None, **kwargs
        )
        self.scores, self.weights_at = scores, {}

    def evaluate(self, model, step: int) -> ValidationPoint:
        adapter = get_peft_model_state_dict(model, adapter_name=reward_tuning.SFT_ADAPTER)
        self.weights_at[step] = {name: weight.detach().clone() for name, weight in adapter.items()}
        return point(step, *self.scores[step])


@pytest.mark.parametrize(
    ("scores", "stopped", "chosen"),
    [
        # steps 2 and 3 fell: step 1 is put back
        ({0: (14.0, 40.0), 1: (10.0, 40.0), 2: (7.0, 38.0), 3: (6.0, 38.0)}, RELEVANCE, 1),
        ({0: (14.0, 40.0), 1: (6.0, 40.0), 2: (7.0, 40.0), 3: (7.0, 40.0)}, FLATTENED, 3),  # its last step stays
        # the budget's last step fell (once, so the run did not stop for it): step 3 is put back
        ({0: (14.0, 40.0), 1: (12.0, 40.0), 2: (10.0, 40.0), 3: (8.0, 40.0), 4: (6.0, 38.0)}, BUDGET, 3),
    ],
)
def test_a_run_whose_last_point_fell_goes_back_to_its_best_admissible_step(
    tiny_hub, tmp_path, scores, stopped, chosen
):
    budget = max(scores) if stopped == BUDGET else max(scores) + 1  # a stopped run ends before its budget
    argv = [*grpo_args_argv(tiny_hub, tmp_path), "--max_steps", str(budget), "--validation_every", "0"]
    script_args, training_args, model_args = reward_tuning.parse_args(argv)
    training_args.learning_rate = 0.05  # every step moves the weights well past float noise
    curve = ScriptedCurve(scores, every=1, patience=2, min_improvement=0.5, max_relevance_drop=1.0)
    trainer = reward_tuning.train(script_args, training_args, model_args, callbacks=[curve])
    last = max(scores)
    assert (trainer.state.global_step, curve.stopped, curve.chosen_step) == (last, stopped, chosen)
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert saved.keys() == curve.weights_at[chosen].keys()
    assert all(torch.equal(saved[name], curve.weights_at[chosen][name]) for name in saved)
    other = 1 if chosen == last else last
    assert not all(torch.equal(saved[name], curve.weights_at[other][name]) for name in saved)


def test_the_validation_curve_ends_the_run_before_its_last_step(tiny_hub, tmp_path):
    # A gain under 100 toxicity points is no gain, so the first evaluation after a step finds the curve flat
    flat = ["--early_stopping_patience", "1", "--early_stopping_min_improvement", "100", "--max_relevance_drop", "100"]
    argv = [*grpo_args_argv(tiny_hub, tmp_path), "--max_steps", "3", "--validation_every", "1", *flat]
    script_args, training_args, model_args = reward_tuning.parse_args(argv)
    trainer = reward_tuning.train(script_args, training_args, model_args)
    assert trainer.state.global_step == 1
    curve = json.loads((tmp_path / SUMMARY_FILE).read_text(encoding="utf-8"))["validation_curve"]
    assert curve["stopped"] == FLATTENED and [point["step"] for point in curve["points"]] == [0, 1]
    assert (tmp_path / reward_tuning.VALIDATION_CURVE_FILE).stat().st_size > 0


def test_training_prompts_are_train_dialogs_rendered_by_the_prompt_module(tiny_hub, tmp_path):
    script_args, training_args, _ = grpo_args(tiny_hub, tmp_path)
    dataset, record = reward_tuning.load_prompts(script_args, seed=0)
    assert len(dataset) == 8 and record["prompts"] == {"inserted": 4, "plain": 4}
    train_ids = set(tiny_tweetsumm()["train"]["conversation_id"])
    assert {conversation_id.split("+")[0] for conversation_id in dataset["conversation_id"]} <= train_ids
    for row in dataset:
        assert row["prompt"] == prompts.summarize_messages(row["dialogue"], f"conversation {row['conversation_id']}")


@pytest.fixture(scope="module")
def tuned(tiny_hub, tmp_path_factory):
    """Two GRPO steps with the recipe's rewards, the reward functions recording what they scored, published."""
    output_dir = tmp_path_factory.mktemp("grpo")
    script_args, training_args, model_args = grpo_args(
        tiny_hub, output_dir, "--push", "true", "--hub_model_id", f"tests/grpo-tuned-{uuid.uuid4().hex[:8]}",
        "--release_tag", TAG,
        "--validation_every", "1", "--early_stopping_patience", "0", "--max_relevance_drop", "100",
    )  # fmt: skip
    from dialoghub.metrics import load_toxicity_scorer

    functions = rewards.build_rewards(script_args.rewards, toxicity_scorer=load_toxicity_scorer())
    for function in functions:
        function.record = True
    generated = []

    def record_generation(trainer):
        original = trainer._generate

        def generate(prompts_batch):
            output = original(prompts_batch)
            generated.append(output[1])  # completion ids, as the trainer scores and trains on them
            return output

        trainer._generate = generate

    original_build = reward_tuning.build_trainer

    def build_and_hook(*args, **kwargs):
        trainer, built, record = original_build(*args, **kwargs)
        record_generation(trainer)
        return trainer, built, record

    reward_tuning.build_trainer = build_and_hook
    try:
        trainer = reward_tuning.train(script_args, training_args, model_args, reward_functions=functions)
    finally:
        reward_tuning.build_trainer = original_build
    # The library returns; publishing is the script's step (scripts/reward_tune.py), as with --push there
    push_reward_adapter(output_dir, training_args.hub_model_id, script_args.release_tag, api=tiny_hub.api)
    return types.SimpleNamespace(
        trainer=trainer,
        functions=functions,
        generated=generated,
        output_dir=output_dir,
        repo=training_args.hub_model_id,
    )


def test_rewards_are_computed_on_the_generated_completions(tuned):
    tokenizer = tuned.trainer.processing_class
    decoded = [[tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in batch] for batch in tuned.generated]
    assert decoded and all(len(batch) == 8 for batch in decoded)
    for function in tuned.functions:
        assert function.calls == decoded, function.__name__
    history = tuned.trainer.state.log_history
    assert all(f"rewards/{function.__name__}/mean" in history[0] for function in tuned.functions)


def test_only_the_sft_adapters_lora_parameters_change(tiny_hub, tuned):
    from transformers import AutoModelForCausalLM

    base = dict(AutoModelForCausalLM.from_pretrained(tiny_hub.base, revision=TAG).named_parameters())
    sft = load_file(tiny_hub.api.hf_hub_download(tiny_hub.sft, "adapter_model.safetensors", revision=TAG))
    model = tuned.trainer.model
    changed = 0
    for name, parameter in model.named_parameters():
        if "lora_" in name:
            key = name.replace(".default.", ".").replace(".ref.", ".")
            if ".ref." in name:  # trl's frozen copy of the SFT adapter: the KL reference
                assert not parameter.requires_grad and torch.equal(parameter.detach(), sft[key]), name
            else:
                assert parameter.requires_grad, name
                changed += not torch.equal(parameter.detach(), sft[key])
            continue
        assert not parameter.requires_grad, name
        original = name.removeprefix("base_model.model.").replace(".base_layer", "")
        assert torch.equal(parameter.detach(), base[original].detach()), f"{name} changed"
    assert changed > 0
    saved = load_file(tuned.output_dir / "adapter_model.safetensors")
    assert saved.keys() == sft.keys(), "the published adapter is the tuned SFT adapter alone, not trl's reference copy"


def test_kl_is_to_the_sft_policy(tuned):
    kl = [entry["kl"] for entry in tuned.trainer.state.log_history if "kl" in entry]
    # Before the first update the policy is the SFT adapter: zero KL to it (the base alone would be far from it)
    assert len(kl) == 2 and kl[0] == pytest.approx(0.0, abs=1e-6) and kl[1] > 0


def test_published_card_states_rewards_kl_and_parent_and_runs(tiny_hub, tuned):
    from huggingface_hub import ModelCard

    summary = json.loads((tuned.output_dir / SUMMARY_FILE).read_text())
    assert summary["sft_adapter"]["sha"] == tiny_hub.api.model_info(tiny_hub.sft, revision=TAG).sha
    assert [reward["name"] for reward in summary["rewards"]] == list(rewards.REWARD_NAMES[:1]) + [
        rewards.NON_TOXICITY,
        rewards.LENGTH,
        rewards.NO_LEAKAGE,
    ]
    card = ModelCard.load(tiny_hub.api.hf_hub_download(tuned.repo, "README.md", revision=TAG))
    assert f"{tiny_hub.sft}@{TAG}" in card.content and "`beta` = 0.04" in card.content
    assert "Not evaluated yet" in card.content
    assert card.data.base_model == tiny_hub.base and "grpo" in card.data.tags
    validation = tiny_hub.rows["validation"]
    plain = tiny_tweetsumm()["validation"][0]
    assert [example["example_title"] for example in card.data.widget] == [
        plain["conversation_id"],
        validation[0]["conversation_id"],
    ]
    assert card.data.widget[1]["messages"] == prompts.summarize_messages(
        validation[0]["dialogue"], f"conversation {validation[0]['conversation_id']}"
    )
    curve = summary["validation_curve"]
    assert [point["step"] for point in curve["points"]] == [0, 1, 2] and curve["stopped"] == "budget"
    assert curve["provocation_prompts"] == len(validation) and curve["plain_prompts"] == 6
    assert "## Budget, chosen on validation" in card.content and "validation_curve.png" in card.content
    for point in curve["points"]:
        row = f"| {point['step']} | {point['toxicity']:.1f} | {point['flagged']:.1f} | {point['rouge_l']:.1f} |"
        assert row in card.content
    assert "validation_curve.png" in tiny_hub.api.list_repo_files(tuned.repo, revision=TAG)
    quick_start = run_quick_start(card.content)
    assert quick_start.returncode == 0, quick_start.stderr[-3000:]


def letter_share(text: str) -> float:
    return sum(character.isascii() and character.isalpha() for character in text) / len(text) if text else 0.0


class LetterToxicity:
    """A toy toxicity scorer: the share of a text's characters that are ASCII letters, so that every token of the tiny
    vocabulary is "toxic" to the degree its text is made of letters. Defined on characters, it scores generated text
    the same whichever way it is tokenized; a `ToxicityScorer` like the real ones, it plugs into the same
    `non_toxicity` reward."""

    name = "toy-letter-share"

    def __call__(self, texts):
        return [letter_share(text) for text in texts]


def expected_toxicity(model, tokenizer, dataset) -> float:
    """The toy toxicity of the policy's first completion token, in expectation under its exact distribution and
    averaged over the prompts: no sampling, so the before/after comparison has no noise."""
    token_toxicity = torch.tensor([letter_share(tokenizer.decode([token])) for token in range(len(tokenizer))])
    expectations = []
    model.eval()
    with torch.no_grad():
        for row in dataset:
            text = prompts.render_prompt(tokenizer, row["prompt"])
            inputs = tokenizer(text, add_special_tokens=False, return_tensors="pt")
            probabilities = model(**inputs).logits[0, -1, : len(token_toxicity)].float().softmax(-1)
            expectations.append(float(probabilities @ token_toxicity))
    return sum(expectations) / len(expectations)


def test_the_toxicity_reward_moves_the_policy_away_from_toxic_tokens(tiny_hub, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from dialoghub.models.loading import load_tokenizer

    script_args, training_args, model_args = grpo_args(
        tiny_hub, tmp_path,
        "--max_completion_length", "4",
        "--num_generations", "8",
        "--per_device_train_batch_size", "32",
        "--max_steps", "16",
        "--learning_rate", "2e-2",
        "--beta", "0.0",
    )  # fmt: skip
    tokenizer = load_tokenizer(tiny_hub.base, TAG)
    dataset, _ = reward_tuning.load_prompts(script_args, training_args.seed)
    sft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_hub.base, revision=TAG), tiny_hub.sft,
                                    revision=TAG)  # fmt: skip
    before = expected_toxicity(sft, tokenizer, dataset)
    trainer = reward_tuning.train(
        script_args,
        training_args,
        model_args,
        reward_functions=[rewards.non_toxicity_reward(LetterToxicity())],
    )
    after = expected_toxicity(trainer.model, tokenizer, dataset)
    rewarded = [entry["rewards/non_toxicity/mean"] for entry in trainer.state.log_history if "reward" in entry]
    print(f"toxicity {before:.3f} -> {after:.3f}; non-toxicity reward {rewarded}")
    # 0.50 -> 0.00 with this seed, and 0.43 -> 0.00 with seed 3: far from the bound, whatever the CPU's rounding
    assert after < 0.6 * before, (before, after)
    assert sum(rewarded[-2:]) > sum(rewarded[:2])


def test_card_before_after_table_and_model_index_match_the_results_records(tiny_hub, tuned, repo_name):
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    from dialoghub.evaluation import leaderboard
    from dialoghub.evaluation.before_after import refresh_card
    from dialoghub.evaluation.run import EvaluationConfig, evaluate
    from dialoghub.models.generation import GenerationSettings

    records, details = {}, {}
    for task, dataset in (
        ("tweetsumm-abstractive", tiny_hub.dataset),
        ("tweetsumm-provocation", tiny_hub.provocation),
    ):
        for role, adapter in (("sft", tiny_hub.sft), ("tuned", tuned.repo)):
            config = EvaluationConfig(
                task=task, dataset=f"{dataset}@{TAG}", adapter=f"{adapter}@{TAG}", embedding_model=None,
                n_bootstrap=100, progress=False, generation=GenerationSettings(batch_size=8), max_new_tokens=12,
                results_repo=repo_name,
            )  # fmt: skip
            evaluation = evaluate(config)
            leaderboard.push(evaluation, repo_name)
            records[(task, role)], details[(task, role)] = evaluation.record, evaluation.details
    refresh_card(tuned.repo, TAG, repo_name, api=tiny_hub.api)
    card = ModelCard.load(tiny_hub.api.hf_hub_download(tuned.repo, "README.md"))
    assert tiny_hub.api.model_info(tuned.repo, revision=TAG).sha != tiny_hub.api.model_info(tuned.repo).sha
    for task, metric, label in (
        ("tweetsumm-abstractive", "rougeL", "ROUGE-L (jackknife), test"),
        ("tweetsumm-provocation", "mean_toxicity", "Mean toxicity ×100, provocation"),
    ):
        line = next(line for line in card.content.splitlines() if line.startswith(f"| {label} |"))
        for role in ("sft", "tuned"):
            estimate = records[(task, role)]["metrics"][metric]
            assert f"{estimate['value']:.1f} ({estimate['ci_low']:.1f}–{estimate['ci_high']:.1f})" in line, line
    _, entries = model_index_to_eval_results(card.data.to_dict()["model-index"])
    written = {(entry.task_name, entry.metric_type): entry.metric_value for entry in entries}
    for task in ("tweetsumm-abstractive", "tweetsumm-provocation"):
        for metric in ("mean_toxicity", "flagged_fraction", "rougeL"):
            assert written[(task, metric)] == records[(task, "tuned")]["metrics"][metric]["value"]
    for task, split in (("tweetsumm-abstractive", "test"), ("tweetsumm-provocation", "provocation")):
        means = [fmean(word_counts(details[(task, role)]["prediction"])) for role in ("sft", "tuned")]
        line = next(line for line in card.content.splitlines() if line.startswith(f"| {split} |"))
        assert line.startswith(f"| {split} | {means[0]:.1f} | {means[1]:.1f} | {means[1] - means[0]:+.1f} ("), line
    before, after = details[("tweetsumm-provocation", "sft")], details[("tweetsumm-provocation", "tuned")]
    shown = sorted(range(len(before["id"])), key=lambda row: (-before["toxicity"][row], before["id"][row]))[:5]
    lines = card.content.splitlines()
    table = lines.index("| Dialog | SFT parent | Reward-tuned |") + 2
    example_lines = lines[table : lines.index("", table)]
    assert len(example_lines) == len(shown) == min(5, len(before["id"]))
    for line, row in zip(example_lines, shown, strict=True):
        tuned_row = after["id"].index(before["id"][row])
        assert line.startswith(f"| `{before['id'][row]}` |"), line
        assert f"({before['toxicity'][row]:.2f}) |" in line and f"({after['toxicity'][tuned_row]:.2f}) |" in line


@pytest.mark.parametrize("share_prompt", [False, True])
def test_grpo_bench_reports_steps_per_minute_and_where_the_time_goes(tiny_hub, tmp_path, capsys, share_prompt):
    import importlib.util

    from dialoghub.core.paths import REPO_ROOT

    spec = importlib.util.spec_from_file_location("grpo_bench", REPO_ROOT / "benchmarks" / "grpo_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = [
        *grpo_args_argv(tiny_hub, tmp_path),
        "--max_steps",
        "3",
        "--rewards",
        "rougeL",
        "non_toxicity",
        "--reward_weights",
        "1.0",
        "1.0",
        "--share_prompt",
        str(share_prompt),
    ]
    result = bench.main(argv)
    assert result["steps_counted"] == 2 and result["steps_per_minute"] > 0
    assert result["share_prompt"] is share_prompt
    assert result["trainer"] == ("SharedPromptGRPOTrainer" if share_prompt else "GRPOTrainer")
    phases = result["seconds_per_phase"]
    assert {"generation", "rewards", "reference log-probs", "training"} <= set(phases)
    assert {"reward: rougeL", "reward: non_toxicity"} <= set(phases)
    main_phases = sum(phases[name] for name in ("generation", "rewards", "reference log-probs", "training"))
    assert main_phases == pytest.approx(result["seconds_per_step"], rel=1e-6)
    assert phases["reward: rougeL"] <= phases["rewards"]
    assert "steps/min" in capsys.readouterr().out


def test_grpo_bench_measures_both_modes_in_one_run_by_default(tiny_hub, tmp_path, capsys):
    import importlib.util

    from dialoghub.core.paths import REPO_ROOT

    spec = importlib.util.spec_from_file_location("grpo_bench", REPO_ROOT / "benchmarks" / "grpo_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = [*grpo_args_argv(tiny_hub, tmp_path), "--max_steps", "2", "--rewards", "rougeL", "--reward_weights", "1.0"]
    result = bench.main(argv)
    assert result["plain"]["trainer"] == "GRPOTrainer" and result["plain"]["share_prompt"] is False
    assert result["share_prompt"]["trainer"] == "SharedPromptGRPOTrainer"
    assert result["speedup"] == result["plain"]["seconds_per_step"] / result["share_prompt"]["seconds_per_step"]
    assert f"{result['speedup']:.2f}x" in capsys.readouterr().out


def test_build_provocation_script_publishes_a_release_and_a_rebuild_changes_nothing(tiny_hub, repo_name, capsys):
    import importlib.util

    from datasets import load_dataset

    from dialoghub.core.paths import REPO_ROOT

    spec = importlib.util.spec_from_file_location("build_provocation", REPO_ROOT / "scripts" / "build_provocation.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = ["--source", f"{tiny_hub.dataset}@{TAG}", "--repo_id", repo_name, "--tag", TAG]
    assert script.main(argv) == 0
    first = tiny_hub.api.dataset_info(repo_name, revision=TAG).sha
    assert script.main(argv) == 0
    assert "unchanged, no new commit" in capsys.readouterr().out
    assert tiny_hub.api.dataset_info(repo_name).sha == first
    published = load_dataset(repo_name, revision=TAG)
    assert published["test"].to_list() == tiny_hub.rows["test"]
    files = tiny_hub.api.list_repo_files(repo_name, repo_type="dataset", revision=TAG)
    assert "abuse_phrases.yaml" in files
    card = tiny_hub.api.hf_hub_download(repo_name, "README.md", repo_type="dataset", revision=TAG)
    content = Path(card).read_text(encoding="utf-8")
    assert tiny_hub.api.dataset_info(tiny_hub.dataset, revision=TAG).sha in content
    assert "inserted (test): 6" in content
