"""GPU smoke test: the GPU recipes as a user with a GPU runs them, on models this script builds, in minutes.

python benchmarks/gpu_smoke.py [--workdir DIR] [--report gpu_smoke_report.json]

Runs on one CUDA GPU with no internet: the models are built here (a tiny random Llama, and a random 2-layer model
with Llama-3.1-8B's shapes: 4096 hidden, 14336 intermediate, 32 heads, 8 KV heads, a 128,256-token vocabulary), the
data is a tiny tweetsumm-like dataset, and everything is served by the project's embedded Hub under --workdir. Checks,
one pass/fail line each, then a JSON report (--report):

1. matmul_4bit: a bitsandbytes NF4 layer on the GPU against its dequantized weights.
2. sft_summarizer, sft_dialogue_generator: models_repo/*-lora/recipe-gpu.yaml for 3 steps, only the model, dataset,
   output and steps overridden, on the 8B-shaped model: a 4-bit base, bf16 LoRA, a finite loss, the adapter file
   written, and the peak GPU memory.
3. sft_speedups: the summarizer recipe with flatten_batches and completion_logits_only on: the same loss within 2%.
4. fsdp_launch: `accelerate launch --num_processes 1` with models_repo/accelerate/fsdp_qlora.yaml (tiny model):
   the adapter file is there afterwards.
5. grpo_4bit: models_repo/summarizer-grpo-lora/recipe-gpu.yaml for 2 steps on a 4-bit base (tiny model).
6. leaderboard_row: generation and one leaderboard row on CUDA (8B-shaped model), with tokens/s.
7. vllm: when vLLM is importable, two engines in one process (the leaderboard's case), LoRA and token-id prompts.

Packages: requirements.txt, with torch as a CUDA wheel of the same version (the pinned one there is the CPU wheel):
`pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128` (bitsandbytes 0.50 ships its CUDA
kernels in the wheel). Optional: `pip install vllm` (check 7 is skipped without it). No flash-attn, no DeepSpeed.
Without a CUDA device it stops at once with an error: it never falls back to the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from dialoghub.hub.client import isolate_hf_environment, start_hub

HERE = Path(__file__).resolve().parents[1]  # the checkout this script belongs to (its recipes and test fixtures)
TAG = "v1.0"
SFT_RECIPES = {
    "sft_summarizer": HERE / "models_repo" / "summarizer-lora" / "recipe-gpu.yaml",
    "sft_dialogue_generator": HERE / "models_repo" / "dialogue-generator-lora" / "recipe-gpu.yaml",
}
GRPO_RECIPE = HERE / "models_repo" / "summarizer-grpo-lora" / "recipe-gpu.yaml"
FSDP_CONFIG = HERE / "models_repo" / "accelerate" / "fsdp_qlora.yaml"
LOSS_RTOL = 0.02
# Llama-3.1-8B's shapes (its config.json), with 2 layers instead of 32
LLAMA_31_8B_SHAPES = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "rope_theta": 500000.0,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=None, help="Scratch folder (default: a new temporary one).")
    parser.add_argument("--report", type=Path, default=Path("gpu_smoke_report.json"), help="JSON report path.")
    return parser.parse_args(argv)


def require_cuda() -> None:
    """Exit non-zero with the reason unless torch sees a CUDA device."""
    import torch  # the one import before the HF environment is set: torch reads none of it

    if not torch.cuda.is_available():
        sys.exit(
            f"gpu_smoke: no CUDA device (torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}). "
            "This smoke test runs only on a GPU and never falls back to the CPU; install torch's CUDA wheel "
            "(see --help) on a machine with an NVIDIA GPU."
        )


# Run as a script, the command line is read (--help ends here), the GPU is required, and the HF libraries are pointed
# at an embedded Hub and caches under the work folder, all before anything imports them.
if __name__ == "__main__":
    OPTIONS = parse_args()
    require_cuda()
    WORKDIR = OPTIONS.workdir or Path(tempfile.mkdtemp(prefix="gpu-smoke-"))
    WORKDIR.mkdir(parents=True, exist_ok=True)
    ENDPOINT = isolate_hf_environment(WORKDIR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(HERE))  # tests.tiny_models: the tokenizer, tiny Llama and dataset the test suite uses

import bitsandbytes as bnb  # noqa: E402
import torch  # noqa: E402
from datasets import load_dataset  # noqa: E402
from huggingface_hub import HfApi  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

from dialoghub.evaluation.run import EvaluationConfig, evaluate  # noqa: E402
from dialoghub.models import prompts  # noqa: E402
from dialoghub.models.generation import GenerationSettings, load_generator  # noqa: E402
from dialoghub.reward import training as reward_tuning  # noqa: E402
from dialoghub.sft import training  # noqa: E402
from tests.tiny_models import save_tiny_base, tiny_tweetsumm  # noqa: E402

# ---------------------------------------------------------------------------------------------------------------
# The world: models and data built here, served by the embedded Hub


def build_world(workdir: Path):
    """Tiny base, dataset (one summary per dialog, so that padded and padding-free batches hold the same rows), an
    SFT adapter on the tiny base, all on the embedded Hub at tag v1.0; and the 8B-shaped model in a folder."""

    api = HfApi()
    world = {"base": "smoke/tiny-llama", "dataset": "smoke/tiny-tweetsumm", "sft": "smoke/tiny-summarizer-lora"}
    tiny_dir = save_tiny_base(workdir / "tiny-base")
    api.create_repo(world["base"], exist_ok=True)
    api.upload_folder(repo_id=world["base"], folder_path=tiny_dir)
    api.create_tag(world["base"], tag=TAG)

    data = tiny_tweetsumm(train=64, validation=8, test=8)
    data = data.map(lambda row: {"summaries": row["summaries"][:1]})
    data.push_to_hub(world["dataset"])
    api.create_tag(world["dataset"], tag=TAG, repo_type="dataset")

    # An SFT adapter with non-zero LoRA B, trained on the tiny base's Hub id (its adapter_config.json names it)
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(world["base"], revision=TAG)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False, revision=TAG)
    sft_dir = workdir / "tiny-sft"
    get_peft_model(base, config).save_pretrained(sft_dir)
    api.create_repo(world["sft"], exist_ok=True)
    api.upload_folder(repo_id=world["sft"], folder_path=sft_dir)
    api.create_tag(world["sft"], tag=TAG)

    # The 8B-shaped model: random bf16 weights built on the GPU, saved with the tiny tokenizer beside them

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    shapes = LlamaConfig(
        **LLAMA_31_8B_SHAPES,
        num_hidden_layers=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.device("cuda"):
        big = LlamaForCausalLM(shapes).to(torch.bfloat16)
    world["big"] = str(workdir / "llama-3.1-8b-shapes-2-layers")
    big.save_pretrained(world["big"])
    tokenizer.save_pretrained(world["big"])
    # A rank-20 adapter on it: above vLLM's default max_lora_rank (16), which the generator must raise
    world["big_adapter"] = str(workdir / "llama-3.1-8b-shapes-lora-r20")
    lora = LoraConfig(r=20, lora_alpha=40, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(big, lora).save_pretrained(world["big_adapter"])
    del big
    release_gpu()
    return world


def release_gpu() -> None:

    gc.collect()
    torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------------------------
# Checks: each returns its measurements and raises on failure


def check_matmul_4bit():

    torch.manual_seed(0)
    dense = torch.nn.Linear(256, 128, bias=False, dtype=torch.bfloat16)
    layer = bnb.nn.Linear4bit(256, 128, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(dense.weight.data.clone(), requires_grad=False, quant_type="nf4")
    layer = layer.cuda()
    inputs = torch.randn(8, 256, dtype=torch.bfloat16, device="cuda")
    output = layer(inputs)
    dequantized = bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state)
    expected = inputs @ dequantized.t()
    error = (output.float() - expected.float()).abs().max().item()
    assert layer.weight.dtype == torch.uint8 and output.device.type == "cuda", "not a 4-bit CUDA layer"
    assert error < 0.05 * expected.float().abs().max().item(), f"4-bit matmul off by {error}"
    return {"max_abs_error": error}


def sft_run(recipe: Path, world: dict, output_dir: Path, *extra: str):
    """scripts/train_adapter.py's run in this process: the recipe with the model, dataset, output and steps set."""

    args = ["--config", str(recipe), "--model_name_or_path", world["big"], "--dataset_name", world["dataset"]]
    args += ["--output_dir", str(output_dir), "--max_steps", "3", *extra]
    torch.cuda.reset_peak_memory_stats()
    trainer = training.train(*training.parse_args(args))
    peak_gb = torch.cuda.max_memory_allocated() / 2**30
    return trainer, peak_gb


def check_sft(recipe: Path, world: dict, workdir: Path, name: str, *extra: str):

    trainer, peak_gb = sft_run(recipe, world, workdir / name, *extra)
    try:
        model = trainer.model
        quantized = [module for module in model.modules() if isinstance(module, bnb.nn.Linear4bit)]
        lora = [parameter for n, parameter in model.named_parameters() if "lora_" in n]
        loss = next(entry["train_loss"] for entry in reversed(trainer.state.log_history) if "train_loss" in entry)
        assert quantized and all(module.weight.dtype == torch.uint8 for module in quantized), "the base is not 4-bit"
        assert lora and all(parameter.dtype == torch.bfloat16 for parameter in lora), "LoRA is not bf16"
        assert math.isfinite(loss), f"loss {loss}"
        assert (workdir / name / "adapter_model.safetensors").is_file(), "no adapter file"
        assert trainer.state.global_step == 3
        return {"train_loss": loss, "peak_memory_gb": round(peak_gb, 2), "linear_4bit_layers": len(quantized)}
    finally:
        trainer.end()
        del trainer
        release_gpu()


def check_fsdp_launch(world: dict, workdir: Path):
    output_dir = workdir / "fsdp"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(FSDP_CONFIG), "--num_processes", "1",
        str(HERE / "scripts" / "train_adapter.py"), "--config", str(SFT_RECIPES["sft_summarizer"]),
        "--model_name_or_path", world["base"], "--dataset_name", world["dataset"],
        "--output_dir", str(output_dir), "--max_steps", "2",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=HERE, env=os.environ.copy())
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    adapter = output_dir / "adapter_model.safetensors"
    assert adapter.is_file() and adapter.stat().st_size > 0, "no adapter file after the FSDP run"
    return {"adapter_bytes": adapter.stat().st_size}


def check_grpo_4bit(world: dict, workdir: Path):
    args = [
        "--config", str(GRPO_RECIPE), "--sft_adapter", f"{world['sft']}@{TAG}", "--dataset_name", world["dataset"],
        "--provocation_fraction", "0", "--output_dir", str(workdir / "grpo"), "--max_steps", "2",
    ]  # fmt: skip
    trainer = reward_tuning.train(*reward_tuning.parse_args(args))
    try:
        model = trainer.accelerator.unwrap_model(trainer.model)
        assert any(isinstance(module, bnb.nn.Linear4bit) for module in model.modules()), "the policy is not 4-bit"
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        assert trainer.state.global_step == 2 and losses and all(map(math.isfinite, losses)), f"losses {losses}"
        assert (workdir / "grpo" / "adapter_model.safetensors").is_file(), "no adapter file"
        return {"losses": losses}
    finally:
        trainer.end()
        del trainer
        release_gpu()


def check_leaderboard_row(world: dict):

    config = EvaluationConfig(
        model=world["big"],
        dataset=f"{world['dataset']}@{TAG}",
        embedding_model=None,
        n_bootstrap=100,
        progress=False,
        push=False,
        backend="transformers",
        generation=GenerationSettings(max_new_tokens=32, batch_size=8),
    )
    record = evaluate(config).record
    release_gpu()
    assert record["runtime"]["dtype"] == "bfloat16", record["runtime"]
    assert record["n_samples"] == 8 and record["statistics"]["new_tokens_mean"] > 0
    return {"generated_tokens_per_s": round(record["statistics"]["generated_tokens_per_s"], 1)}


def check_vllm(world: dict):

    if importlib.util.find_spec("vllm") is None:
        return None

    # The 8B-shaped model (vLLM's attention kernels want Llama's head size, 128) with its rank-20 adapter, and a
    # second engine in the same process, as the leaderboard's round-trip summarizer is
    generator = load_generator(world["big"], world["big_adapter"], backend="vllm")
    summarizer = load_generator(world["big"], backend="vllm")

    rows = load_dataset(world["dataset"], split="test", revision=TAG)
    conversations = [prompts.summarize_messages(row["dialogue"]) for row in rows]
    started = time.perf_counter()
    completions = generator.generate(conversations, GenerationSettings(max_new_tokens=32), progress=False)
    seconds = time.perf_counter() - started
    again = summarizer.generate(conversations[:2], GenerationSettings(max_new_tokens=8), progress=False)
    assert len(completions) == len(conversations) and len(again) == 2
    assert generator.dtype == "bfloat16"
    rendered = [generator.render(messages) for messages in conversations]
    counts = [len(ids) for ids in generator.tokenizer(rendered, add_special_tokens=False)["input_ids"]]
    assert [completion.prompt_tokens for completion in completions] == counts, "vLLM re-tokenized the prompts"
    del generator, summarizer
    release_gpu()
    tokens = sum(completion.new_tokens for completion in completions)
    return {"generated_tokens_per_s": round(tokens / seconds, 1)}


# ---------------------------------------------------------------------------------------------------------------


def run_check(name: str, function, *args) -> dict:
    started = time.perf_counter()
    try:
        measured = function(*args)
        status = "skipped" if measured is None else "pass"
        entry = {"name": name, "status": status, "measurements": measured or {}}
    except Exception as error:  # a failed check is reported, and the others still run
        entry = {
            "name": name,
            "status": "fail",
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc()[-4000:],
        }
    entry["seconds"] = round(time.perf_counter() - started, 1)
    detail = entry.get("measurements") or entry.get("error")
    print(f"{entry['status'].upper():7} {name:24} {entry['seconds']:7.1f}s  {detail}")
    sys.stdout.flush()
    return entry


def main() -> int:
    options, workdir = OPTIONS, WORKDIR
    hub = start_hub(workdir / "hub", port=int(ENDPOINT.rsplit(":", 1)[1]))
    started = time.perf_counter()
    checks = []
    try:
        world = run_check_world(workdir, checks)
        if world is not None:
            checks.append(run_check("matmul_4bit", check_matmul_4bit))
            for name, recipe in SFT_RECIPES.items():
                checks.append(run_check(name, check_sft, recipe, world, workdir, name))
            checks.append(run_check("sft_speedups", check_speedups, world, workdir, checks))
            checks.append(run_check("fsdp_launch", check_fsdp_launch, world, workdir))
            checks.append(run_check("grpo_4bit", check_grpo_4bit, world, workdir))
            checks.append(run_check("leaderboard_row", check_leaderboard_row, world))
            checks.append(run_check("vllm", check_vllm, world))
    finally:
        hub.stop()
    report = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "versions": package_versions(),
        "seconds": round(time.perf_counter() - started, 1),
        "checks": checks,
    }
    options.report.write_text(json.dumps(report, indent=2) + "\n")
    failed = [check["name"] for check in checks if check["status"] == "fail"]
    print(f"{len(checks) - len(failed)}/{len(checks)} checks passed in {report['seconds']}s; report: {options.report}")
    return 1 if failed else 0


def run_check_world(workdir: Path, checks: list) -> dict | None:
    holder = {}

    def build():
        holder["world"] = build_world(workdir)
        return {"big_model": holder["world"]["big"]}

    checks.append(run_check("build_models_and_data", build))
    return holder.get("world")


def check_speedups(world: dict, workdir: Path, checks: list):
    baseline = next(check for check in checks if check["name"] == "sft_summarizer")
    assert baseline["status"] == "pass", "needs the sft_summarizer check"
    measured = check_sft(
        SFT_RECIPES["sft_summarizer"], world, workdir, "sft_speedups",
        "--flatten_batches", "true", "--completion_logits_only", "true",
    )  # fmt: skip
    plain, fast = baseline["measurements"]["train_loss"], measured["train_loss"]
    assert math.isclose(plain, fast, rel_tol=LOSS_RTOL), f"loss {fast} with the speed-ups, {plain} without"
    return measured | {"train_loss_without": plain}


def package_versions() -> dict:
    versions = {}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes", "vllm", "flash-attn"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


if __name__ == "__main__":
    sys.exit(main())
