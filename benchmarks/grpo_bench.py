"""GRPO reward-tuning speed: optimizer steps per minute, and where a step's time goes, on this machine.

python benchmarks/grpo_bench.py [--config models_repo/summarizer-grpo-lora/recipe.yaml] [--max_steps 5 ...]
python benchmarks/grpo_bench.py --share_prompt true   # one mode only: each prompt computed once (reward/trainer.py)

Without `--share_prompt` it measures both in one run, trl's plain step (the baseline) and then the shared-prompt step
(dialoghub/reward/trainer.py), on the same prompts and seed, and prints the speed-up.

Runs the reward-tuning stage exactly as `scripts/reward_tune.py` builds it (the same recipe, parser and overrides;
the SFT adapter and datasets from the Hub that HF_ENDPOINT names, started if needed), trains `max_steps` steps
(default 5) without saving or publishing, and splits each optimizer step's wall time into:

- generation: sampling the completions (`GRPOTrainer._generate`, transformers' `generate` on CPU);
- rewards: the reward functions (each one timed too: ROUGE, the toxicity scorer, ...);
- reference log-probs: the forward passes without gradient, the KL reference (trl's frozen copy of the SFT
  adapter) and, with num_iterations > 1, the old policy;
- training: the rest, the policy's forward and backward passes and the optimizer step.

The first step is warm-up and not counted. The output is one table and a JSON line (`--json`) for the lead's notes.
"""

import dialoghub.core.hubenv  # noqa: F401

import gc
import json
import os
import sys
import time
from collections import defaultdict

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see scripts/train_adapter.py

from dialoghub.core.recipes import describe_cpu  # noqa: E402
from dialoghub.hub.client import hub_session  # noqa: E402
from dialoghub.reward.training import build_trainer, load_prompts, parse_args  # noqa: E402

RECIPE = "models_repo/summarizer-grpo-lora/recipe.yaml"
DEFAULT_STEPS = 5
PHASES = ("generation", "rewards", "reference log-probs", "training")


class PhaseTimer:
    """Seconds per phase, per optimizer step, from wrappers around the trainer's own methods."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.steps: list[dict[str, float]] = []
        self.step_started = 0.0

    def wrap(self, owner, name: str, phase, fallback: str | None = None) -> None:
        """Time `owner.name` into `phase` (a name, or a function of nothing choosing it at call time)."""
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                key = phase() if callable(phase) else phase
                if key is not None:
                    self.current[key] += time.perf_counter() - started

        setattr(owner, name, timed)

    def callback(self):
        from transformers import TrainerCallback

        timer = self

        class StepTimes(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer.current = defaultdict(float)
                timer.step_started = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                step = dict(timer.current)
                step["total"] = time.perf_counter() - timer.step_started
                measured = sum(step.get(phase, 0.0) for phase in PHASES if phase != "training")
                step["training"] = step["total"] - measured
                timer.steps.append(step)

        return StepTimes()


def instrument(trainer, reward_functions, timer: PhaseTimer) -> None:
    import torch

    timer.wrap(trainer, "_generate", "generation")
    timer.wrap(trainer, "_calculate_rewards", "rewards")
    # Without gradient it is a reference (or old-policy) pass; with gradient it is part of the training step
    timer.wrap(
        trainer,
        "_get_per_token_logps_and_entropies",
        lambda: None if torch.is_grad_enabled() else "reference log-probs",
    )
    for function in reward_functions:
        timer.wrap(function, "score", f"reward: {function.__name__}")


def report(timer: PhaseTimer, training_args, n_completions_per_step: int) -> dict:
    counted = timer.steps[1:] or timer.steps
    total = sum(step["total"] for step in counted)
    phases = sorted({key for step in counted for key in step} - {"total"}, key=lambda key: (key not in PHASES, key))
    seconds = {phase: sum(step.get(phase, 0.0) for step in counted) / len(counted) for phase in phases}
    return {
        "steps_counted": len(counted),
        "seconds_per_step": total / len(counted),
        "steps_per_minute": 60 * len(counted) / total,
        "completions_per_step": n_completions_per_step,
        "num_generations": training_args.num_generations,
        "max_completion_length": training_args.max_completion_length,
        "seconds_per_phase": seconds,
    }


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    argv = [arg for arg in argv if arg != "--json"]
    if "--share_prompt" in argv:
        return measure(argv, as_json)
    plain = measure([*argv, "--share_prompt", "false"], as_json)
    gc.collect()
    shared = measure([*argv, "--share_prompt", "true"], as_json)
    speedup = plain["seconds_per_step"] / shared["seconds_per_step"]
    print(
        f"share_prompt: {shared['seconds_per_step']:.1f} s/step against trl's plain {plain['seconds_per_step']:.1f}"
        f" s/step in the same run: {speedup:.2f}x"
    )
    for phase in PHASES:
        before, after = plain["seconds_per_phase"].get(phase, 0.0), shared["seconds_per_phase"].get(phase, 0.0)
        print(f"  {phase:26} {before:8.2f} -> {after:8.2f} s/step")
    return {"plain": plain, "share_prompt": shared, "speedup": speedup}


def measure(argv: list[str], as_json: bool) -> dict:
    """One mode's step time and phase split (the recipe's settings, `argv` on top)."""
    if "--config" not in argv:
        argv = ["--config", RECIPE, *argv]
    if "--max_steps" not in argv:
        argv += ["--max_steps", str(DEFAULT_STEPS)]
    script_args, training_args, model_args = parse_args(
        [*argv, "--save_strategy", "no", "--report_to", "none", "--push", "false"]
    )
    print(describe_cpu(), flush=True)
    timer = PhaseTimer()
    with hub_session():
        dataset, _ = load_prompts(script_args, training_args.seed)
        trainer, reward_functions, record = build_trainer(
            script_args, training_args, model_args, dataset, callbacks=[timer.callback()]
        )
        instrument(trainer, reward_functions, timer)
        trainer.train()
    completions = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    result = report(timer, training_args, completions) | {
        "dtype": record["dtype"],
        "torch_threads": __import__("torch").get_num_threads(),
        "sft_adapter": record["sft_adapter"],
        "share_prompt": getattr(training_args, "share_prompt", False),
        "trainer": type(trainer).__name__,
    }
    print(
        f"\nGRPO on {record['base_model']['id']} + {record['sft_adapter']['id']} ({record['dtype']}, "
        f"{result['torch_threads']} threads): {completions} completions/step "
        f"({training_args.num_generations} per prompt, <= {training_args.max_completion_length} tokens)"
        f"{', share_prompt' if result['share_prompt'] else ''}"
    )
    print(
        f"{result['steps_per_minute']:.2f} steps/min ({result['seconds_per_step']:.1f} s/step over "
        f"{result['steps_counted']} steps after warm-up)\n"
    )
    print(f"{'phase':28} {'s/step':>8} {'share':>7}")
    for phase, seconds in result["seconds_per_phase"].items():
        indent = "  " if phase.startswith("reward: ") else ""
        print(f"{indent + phase:28} {seconds:8.2f} {seconds / result['seconds_per_step']:7.1%}")
    if as_json:
        print(json.dumps(result, default=str))
    return result


if __name__ == "__main__":
    main()
