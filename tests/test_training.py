"""Training a LoRA adapter on a tiny random Llama, with the base model and the dataset served by the real Hub."""

import json
import math
import sys
import types
import uuid
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from dialoghub.core import processes
from dialoghub.core.paths import REPO_ROOT
from dialoghub.models import prompts
from dialoghub.sft import training
from dialoghub.sft.card import SUMMARY_FILE, push_adapter, push_merged
from tests.card_code import run_quick_start
from tests.tiny_models import another_adapter, save_tiny_base, tiny_cli_args, tiny_tweetsumm

TAG = "v1.0"


@pytest.fixture(scope="module")
def tiny_hub(hub, tmp_path_factory):
    """A tiny base model and a tiny tweetsumm-like dataset, each published and tagged v1.0."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.endpoint)
    suffix = uuid.uuid4().hex[:8]
    base_id, dataset_id = f"tests/tiny-llama-{suffix}", f"tests/tiny-tweetsumm-{suffix}"
    api.create_repo(base_id)
    api.upload_folder(repo_id=base_id, folder_path=save_tiny_base(tmp_path_factory.mktemp("tiny-base")))
    api.create_tag(base_id, tag=TAG)
    tiny_tweetsumm().push_to_hub(dataset_id)
    api.create_tag(dataset_id, tag=TAG, repo_type="dataset")
    return types.SimpleNamespace(api=api, base=base_id, dataset=dataset_id)


def hub_args(tiny_hub, output_dir: Path, *overrides: str) -> list[str]:
    return tiny_cli_args(
        tiny_hub.base, tiny_hub.dataset, output_dir, "--model_revision", TAG, "--dataset_revision", TAG, *overrides
    )


def run(tiny_hub, output_dir: Path, *overrides: str, callbacks=None):
    script_args, training_args, model_args = training.parse_args(hub_args(tiny_hub, output_dir, *overrides))
    return training.train(script_args, training_args, model_args, callbacks=callbacks)


def base_model(tiny_hub):
    return AutoModelForCausalLM.from_pretrained(tiny_hub.base, revision=TAG)


@pytest.fixture(scope="module")
def trained(tiny_hub, tmp_path_factory):
    """One summarizer run with evaluation before and after, reporting to trackio (offline)."""
    output_dir = tmp_path_factory.mktemp("summarizer")
    trainer = run(
        tiny_hub,
        output_dir,
        "--max_steps", "8",
        "--learning_rate", "3e-2",
        "--eval_strategy", "steps",
        "--eval_steps", "4",
        "--eval_on_start", "true",
        "--max_eval_samples", "4",
        "--report_to", "trackio",
        "--project", "dialoghub-tests",
    )  # fmt: skip
    return types.SimpleNamespace(trainer=trainer, output_dir=output_dir)


def test_only_lora_parameters_change(tiny_hub, trained):
    before = dict(base_model(tiny_hub).named_parameters())
    changed_lora = 0
    for name, param in trained.trainer.model.named_parameters():
        if "lora_" in name:
            assert param.requires_grad, name
            changed_lora += "lora_B" in name and bool(param.detach().abs().sum() > 0)  # B starts at zero
            continue
        assert not param.requires_grad, name
        original = name.removeprefix("base_model.model.").replace(".base_layer", "")
        assert torch.equal(param.detach(), before[original].detach()), f"{name} changed"
    assert changed_lora > 0


def test_loss_decreases_and_validation_loss_is_reported(trained):
    history = trained.trainer.state.log_history
    eval_losses = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    train_losses = [entry["loss"] for entry in history if "loss" in entry]
    assert len(eval_losses) >= 2 and eval_losses[-1] < eval_losses[0] * 0.9, eval_losses
    assert sum(train_losses[-2:]) < sum(train_losses[:2]), train_losses


def test_outputs_record_the_revisions(tiny_hub, trained):
    out = trained.output_dir
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == tiny_hub.base
    assert adapter_config["revision"] == TAG
    assert (out / "loss_curve.png").read_bytes().startswith(b"\x89PNG")
    assert AutoTokenizer.from_pretrained(out).chat_template == prompts.fallback_chat_template()
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["dataset_sha"] == tiny_hub.api.dataset_info(tiny_hub.dataset, revision=TAG).sha
    assert summary["base_model_sha"] == tiny_hub.api.model_info(tiny_hub.base, revision=TAG).sha
    final_eval = [entry["eval_loss"] for entry in trained.trainer.state.log_history if "eval_loss" in entry][-1]
    assert summary["eval_loss"] == final_eval and summary["perplexity"] == pytest.approx(math.exp(final_eval))
    assert summary["widget"]["messages"] == prompts.prompt_messages("summarize", tiny_tweetsumm()["validation"][0])


def test_trackio_logged_locally_without_network(trained):
    from trackio.sqlite_storage import SQLiteStorage

    (run_name,) = SQLiteStorage.get_runs("dialoghub-tests")
    logged = [entry for entry in SQLiteStorage.get_logs("dialoghub-tests", run_name) if "train/loss" in entry]
    assert len(logged) == 8


def test_adapter_from_hub_by_tag_equals_local(tiny_hub, trained, repo_name, tmp_path):
    from peft import PeftModel

    released = push_adapter(trained.output_dir, repo_name, TAG, api=tiny_hub.api)
    assert released.tag_created and released.tag_commit == released.commit
    again = push_adapter(trained.output_dir, repo_name, TAG, api=tiny_hub.api)
    assert (again.commit, again.new_commit, again.tag_created, again.tag_commit) == (released.commit, False, False,
                                                                                     released.commit)  # fmt: skip
    with pytest.raises(ValueError, match="already has a release v1.0"):
        push_adapter(another_adapter(trained.output_dir, tmp_path / "other"), repo_name, TAG, api=tiny_hub.api)
    assert tiny_hub.api.model_info(repo_name).sha == released.commit, "a refused release must push nothing"

    card = Path(tiny_hub.api.hf_hub_download(repo_name, "README.md", revision=TAG)).read_text(encoding="utf-8")
    quick_start = run_quick_start(card)  # the base at its Hub commit, the adapter at the release tag
    assert quick_start.returncode == 0, quick_start.stderr[-3000:]
    assert quick_start.stdout.endswith("\n"), "the quick start prints the summary"

    tokenizer = AutoTokenizer.from_pretrained(repo_name, revision=TAG)
    messages = prompts.prompt_messages("summarize", tiny_tweetsumm()["test"][0])
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    from_hub = PeftModel.from_pretrained(base_model(tiny_hub), repo_name, revision=TAG).eval()
    local = PeftModel.from_pretrained(base_model(tiny_hub), trained.output_dir).eval()
    with torch.no_grad():
        torch.testing.assert_close(from_hub(**inputs).logits, local(**inputs).logits, rtol=0, atol=0)
        generated = from_hub.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]


def test_merged_model_equals_base_plus_adapter(tiny_hub, trained, repo_name):
    from huggingface_hub import ModelCard, hf_hub_download
    from peft import PeftModel

    push_merged(trained.output_dir, repo_name, TAG, api=tiny_hub.api)
    merged = AutoModelForCausalLM.from_pretrained(repo_name, revision=TAG).eval()
    adapted = PeftModel.from_pretrained(base_model(tiny_hub), trained.output_dir).eval()
    input_ids = torch.tensor([list(range(1, 30))])
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids).logits, adapted(input_ids).logits, rtol=1e-4, atol=1e-4)
    card = ModelCard.load(hf_hub_download(repo_name, "README.md", revision=TAG))
    assert card.data.library_name == "transformers" and card.data.base_model == tiny_hub.base
    quick_start = run_quick_start(card.content)
    assert quick_start.returncode == 0, quick_start.stderr[-3000:]


class StopAt(TrainerCallback):
    """Stop the run after `step`, as a crash right after a checkpoint would."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_resume_ends_at_the_same_weights(tiny_hub, tmp_path):
    schedule = ("--max_steps", "6", "--save_strategy", "steps", "--save_steps", "3", "--lr_scheduler_type", "cosine")
    run(tiny_hub, tmp_path / "straight", *schedule)
    run(tiny_hub, tmp_path / "resumed", *schedule, callbacks=[StopAt(3)])
    assert (tmp_path / "resumed" / "checkpoint-3").is_dir()
    interrupted = load_file(tmp_path / "resumed" / "adapter_model.safetensors")
    trainer = run(tiny_hub, tmp_path / "resumed", *schedule, "--resume", "true")
    assert trainer.state.global_step == 6

    straight = load_file(tmp_path / "straight" / "adapter_model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "adapter_model.safetensors")
    assert straight.keys() == resumed.keys()
    assert any(not torch.equal(interrupted[key], straight[key]) for key in straight)
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=1e-5, atol=1e-6, msg=key)


def test_resume_without_checkpoint_is_a_clear_error(tiny_hub, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run(tiny_hub, tmp_path, "--resume", "true")


def test_4bit_qlora_trains_on_cpu(tiny_hub, tmp_path):
    import bitsandbytes as bnb

    trainer = run(
        tiny_hub,
        tmp_path,
        "--max_steps", "3",
        "--load_in_4bit", "true",
        "--bnb_4bit_quant_type", "nf4",
        "--use_bnb_nested_quant", "true",
        "--dtype", "bfloat16",
    )  # fmt: skip
    quantized = [module for module in trainer.model.modules() if isinstance(module, bnb.nn.Linear4bit)]
    assert quantized and all(module.weight.dtype == torch.uint8 for module in quantized)
    assert quantized[0].weight.quant_state.nested  # double quantization
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    lora_b = [p for name, p in trainer.model.named_parameters() if "lora_B" in name]
    assert lora_b and any(p.detach().abs().sum() > 0 for p in lora_b)


def test_distributed_ddp_adapter_matches_single_process(tiny_hub, trained, tmp_path):
    """Two processes on CPU, DDP over gloo, train; the adapter has the single-process adapter's tensors and shapes,
    and loads. (accelerate 1.15 starts one process for `--cpu --num_processes 2`: see ddp_cpu.yaml.)"""
    from peft import PeftModel

    output_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO_ROOT / "models_repo" / "accelerate" / "ddp_cpu.yaml"),
        str(REPO_ROOT / "scripts" / "train_adapter.py"),
        *hub_args(tiny_hub, output_dir, "--max_steps", "4", "--per_device_train_batch_size", "2"),
    ]  # fmt: skip
    result = processes.run(command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((output_dir / SUMMARY_FILE).read_text())
    assert summary["hyperparameters"]["world_size"] == 2 and summary["global_step"] == 4

    single = load_file(trained.output_dir / "adapter_model.safetensors")
    distributed = load_file(output_dir / "adapter_model.safetensors")
    assert {k: v.shape for k, v in distributed.items()} == {k: v.shape for k, v in single.items()}
    model = PeftModel.from_pretrained(base_model(tiny_hub), output_dir).eval()
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=torch.tensor([[1, 2, 3]])).logits).all()
