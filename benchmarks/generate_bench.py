"""Generation at the machine's limit: every backend on the same prompts in one run, against today's path and the
floor measured in the same run.

Workloads (TweetSumm validation, the prompts of `dialoghub.models.prompts`):
- dialogue: summary -> dialogue, the synthetic recipe's sampling (512 new tokens at most, loop detector on);
- summary: dialogue -> summary, greedy, the round trip's settings (`ROUND_TRIP_GENERATION`).

Backends:
- today: `Generator.generate` as the synthetic stage and the round trip call it (batches of 8 in the given order);
- transformers-tuned: the same model with length-sorted batches of `--batch-size` and the vectorised loop detector
  (`dialoghub.models.backends.loops`), optionally with a static cache or `torch.compile` (`--tuned-extra`);
- transformers-cb: transformers' continuous batching (`generate_batch`) when it runs on this machine;
- engines of `dialoghub.models.backends` whose package is installed: openvino (`openvino-genai`, pinned in
  requirements.txt) and llamacpp (`xllamacpp`, not pinned: `pip install xllamacpp==2026.10.11549` to measure it).

Greedy summaries are compared with today's at the end (identical count): same-precision backends should agree.

For each backend and workload: tokens/s (generated tokens over wall time, prefill included), seconds per item, the
speed ratio to today's path (tokens/s), the time ratio to the floor (1.0 = at the limit; below 1 only with weights
smaller than float32), and the time its model conversion took (first use; cached after).

Usage: python benchmarks/generate_bench.py [--quick] [--model ID_OR_FOLDER] [--adapter ID] [--backends a,b]
"""

import dialoghub.core.hubenv  # noqa: F401

import argparse
import dataclasses
import os
import time
from dataclasses import dataclass

from dialoghub.core.paths import shared_data_dir
from dialoghub.data.tweetsumm import build
from dialoghub.models import generation, prompts
from dialoghub.models.backends import engines, loops
from dialoghub.models.base_models import smollm2_dir
from dialoghub.models.generation import ROUND_TRIP_GENERATION, GenerationSettings, load_generator

TODAY_BATCH_SIZE = 8
# The synthetic recipe's decoding (datasets_repo/synthetic-dialogues/recipe.yaml).
DIALOGUE_GENERATION = GenerationSettings(
    max_new_tokens=512,
    do_sample=True,
    temperature=0.7,
    top_p=0.9,
    repetition_penalty=1.1,
    stop_loops=3,
    batch_size=TODAY_BATCH_SIZE,
)
SUMMARY_GENERATION = dataclasses.replace(ROUND_TRIP_GENERATION, batch_size=TODAY_BATCH_SIZE)


# ---------------------------------------------------------------- the floor


@dataclass(frozen=True)
class MachineLimits:
    read_bandwidth: float  # bytes per second
    matmul_peak: float  # float32 FLOPs per second

    def describe(self) -> str:
        return (
            f"read bandwidth {self.read_bandwidth / 1e9:.1f} GB/s, "
            f"fp32 matmul peak {self.matmul_peak / 1e9:.0f} GFLOP/s"
        )


def _best_seconds(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def measure_limits(buffer_bytes: int = 1 << 30, matmul_size: int = 1536, repeats: int = 5) -> MachineLimits:
    """Read bandwidth from summing a buffer far larger than the caches; the peak from square float32 matmuls."""
    import torch

    buffer = torch.ones(buffer_bytes // 4, dtype=torch.float32)
    bandwidth = buffer_bytes / _best_seconds(buffer.sum, repeats)
    del buffer
    left, right = torch.randn(matmul_size, matmul_size), torch.randn(matmul_size, matmul_size)
    peak = 2 * matmul_size**3 / _best_seconds(lambda: torch.mm(left, right), repeats)
    return MachineLimits(bandwidth, peak)


@dataclass(frozen=True)
class ModelShape:
    matmul_parameters: int  # weights multiplied per token (the tied output projection included, the lookup not)
    weight_bytes: int  # float32 bytes read per decode step
    kv_bytes_per_position: int  # float32 K and V of one position, all layers
    attention_flops_per_position: int  # QK and AV FLOPs per generated token per position attended

    @classmethod
    def of(cls, config) -> "ModelShape":
        hidden, layers = config.hidden_size, config.num_hidden_layers
        heads = config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None) or hidden // heads
        attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
        parameters = layers * (attention + 3 * hidden * config.intermediate_size) + hidden * config.vocab_size
        return cls(parameters, 4 * parameters, 4 * layers * 2 * kv_heads * head_dim, 4 * layers * heads * head_dim)


def floor_seconds(shape: ModelShape, limits: MachineLimits, items: list[tuple[int, int]], batch_size: int) -> float:
    """The least time the items ((prompt tokens, new tokens) each) take with `batch_size` rows per decode step:
    prefill at the matmul peak; each decode step reads the weights once for the batch plus its row's KV cache at the
    measured bandwidth, unless its FLOPs take longer."""
    total = 0.0
    for prompt, new in items:
        total += 2 * shape.matmul_parameters * prompt / limits.matmul_peak
        context = prompt + new / 2  # the mean over the item's decode steps
        step_bytes = shape.weight_bytes / batch_size + shape.kv_bytes_per_position * context
        step_flops = 2 * shape.matmul_parameters + shape.attention_flops_per_position * context
        total += new * max(step_bytes / limits.read_bandwidth, step_flops / limits.matmul_peak)
    return total


# ---------------------------------------------------------------- the backends


@dataclass
class Backend:
    name: str
    precision: str
    generate: object  # (conversations, settings) -> list[Completion]
    conversion_seconds: float | None = None


def today_backend(generator) -> Backend:
    def run(conversations, settings):
        return generator.generate(conversations, settings, sort_by_length=False, progress=False)

    return Backend("today", "float32", run)


def tuned_backend(generator, batch_size: int, extra: str) -> Backend:
    """Today's model with length-sorted batches of `batch_size` and the vectorised loop detector."""
    import torch

    if "compile" in extra:
        generator.model.forward = torch.compile(generator.model.forward, dynamic=True)
    if "static" in extra:
        generator.model.generation_config.cache_implementation = "static"

    def run(conversations, settings):
        settings = dataclasses.replace(settings, batch_size=batch_size)
        original = generation.loop_stopping_criteria
        generation.loop_stopping_criteria = loops.loop_stopping_criteria
        try:
            return generator.generate(conversations, settings, sort_by_length=True, progress=False)
        finally:
            generation.loop_stopping_criteria = original

    label = f"transformers-b{batch_size}" + (f"-{extra}" if extra else "")
    return Backend(label, "float32", run)


class ContinuousBatching(engines.Engine):
    """transformers' own continuous batching (`generate_batch`, paged attention), through the engines' shared
    end-of-turn, loop and decoding handling."""

    name = "transformers-cb"

    def __init__(self, model_path: str, tokenizer, eos_ids, batch_size: int) -> None:
        super().__init__(tokenizer, eos_ids)
        import torch
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=torch.float32, attn_implementation="paged|sdpa"
        ).eval()
        self.batch_size = batch_size

    def generate_ids(self, prompts, settings, seeds):
        import torch
        from transformers import ContinuousBatchingConfig, GenerationConfig

        torch.manual_seed(seeds[0])
        config = GenerationConfig(
            **settings.transformers_kwargs(), eos_token_id=self.eos_ids, pad_token_id=self.tokenizer.pad_token_id
        )
        batching = ContinuousBatchingConfig(max_batch_tokens=2048, max_requests_per_batch=self.batch_size)
        # Not under inference_mode: the manager's thread updates tensors made here.
        outputs = self.model.generate_batch(prompts, generation_config=config, continuous_batching_config=batching)
        return [list(output.generated_tokens) for output in outputs.values()]


def continuous_batching_backend(generator, model_path: str, batch_size: int) -> Backend:
    engine = ContinuousBatching(model_path, generator.tokenizer, generator._eos_token_ids(), batch_size)

    def run(conversations, settings):
        return engine.complete([generator.render(messages) for messages in conversations], settings, settings.seed)

    return Backend("transformers-cb", "float32", run)


def engine_backend(name: str, generator, batch_size: int) -> Backend:
    started = time.perf_counter()
    engine = engines.load_engine(
        name, generator.base, generator.adapter, generator.tokenizer, generator._eos_token_ids(), max_batch=batch_size
    )
    load_seconds = time.perf_counter() - started

    def run(conversations, settings):
        return engine.complete([generator.render(messages) for messages in conversations], settings, settings.seed)

    print(f"{name}: {engine.weights} weights, loaded in {load_seconds:.1f} s")
    return Backend(f"{name}-b{batch_size}", engine.precision, run, engine.conversion_seconds)


# ---------------------------------------------------------------- the run


def workloads(count_dialogues: int, count_summaries: int):
    rows = build(shared_data_dir() / "tweetsumm").rows["default"]["validation"]
    dialogue = [prompts.generate_messages(row["summaries"][0]) for row in rows[:count_dialogues]]
    summary = [prompts.summarize_messages(row["dialogue"], row["conversation_id"]) for row in rows[:count_summaries]]
    return {"dialogue": (dialogue, DIALOGUE_GENERATION), "summary": (summary, SUMMARY_GENERATION)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(smollm2_dir()), help="model id[@rev] or folder (default: %(default)s)")
    parser.add_argument("--adapter", help="PEFT adapter id[@rev] or folder (default: none, the base model)")
    parser.add_argument("--quick", action="store_true", help="8 dialogues and 16 summaries instead of 32 and 64")
    parser.add_argument("--batch-size", type=int, default=16, help="rows per batch of the tuned backends")
    parser.add_argument("--backends", default="today,transformers,transformers-cb," + ",".join(engines.ENGINES))
    parser.add_argument("--tuned-extra", default="", help="'static' and/or 'compile' for the tuned transformers")
    parser.add_argument("--workloads", default="dialogue,summary")
    args = parser.parse_args()

    import torch

    count_dialogues, count_summaries = (8, 16) if args.quick else (32, 64)
    chosen = {name: work for name, work in workloads(count_dialogues, count_summaries).items()
              if name in args.workloads.split(",")}  # fmt: skip
    limits = measure_limits()
    generator = load_generator(args.model, args.adapter, backend="transformers", dtype="float32")
    shape = ModelShape.of(generator.model.config)

    wanted = args.backends.split(",")
    backends = [today_backend(generator)] if "today" in wanted else []
    if "transformers" in wanted:
        tuned = load_generator(args.model, args.adapter, backend="transformers", dtype="float32")
        backends.append(tuned_backend(tuned, args.batch_size, args.tuned_extra))
    if "transformers-cb" in wanted:
        try:
            backends.append(continuous_batching_backend(generator, args.model, args.batch_size))
        except Exception as error:  # noqa: BLE001 - reported as a row that could not be measured
            print(f"transformers-cb: not measured ({type(error).__name__}: {error})")
    for name in engines.ENGINES:
        if name in wanted:
            try:
                backends.append(engine_backend(name, generator, args.batch_size))
            except Exception as error:  # noqa: BLE001 - a missing engine is a row of the report, not a failure
                print(f"{name}: not measured ({type(error).__name__}: {error})")

    print(f"CPU: {describe_cpu()}; torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f}")
    weights = f"{shape.matmul_parameters / 1e6:.0f}M matmul weights, {shape.weight_bytes / 1e6:.0f} MB per step"
    print(f"Limits: {limits.describe()}; model {generator.base} ({weights}); floor at batch {args.batch_size}")
    print(f"adapter: {generator.adapter or 'none (base model)'}")
    header = f"{'workload':<9} {'backend':<24} {'precision':<10} {'items':>5} {'tokens':>6} {'tok/s':>7} "
    print(header + f"{'s/item':>7} {'x today':>7} {'x floor':>7} {'convert s':>9} stops (eos/length/loop)", flush=True)
    warm = [[{"role": "user", "content": "Hello"}]]
    today, greedy = {}, {}
    for backend in backends:
        for workload, (conversations, settings) in chosen.items():
            try:
                backend.generate(warm, dataclasses.replace(settings, max_new_tokens=4))
                started = time.perf_counter()
                completions = backend.generate(conversations, settings)
                seconds = time.perf_counter() - started
            except Exception as error:  # noqa: BLE001 - one failing backend must not cost the others' rows
                print(f"{workload:<9} {backend.name:<24} failed: {type(error).__name__}: {error}", flush=True)
                continue
            items = [(completion.prompt_tokens, completion.new_tokens) for completion in completions]
            tokens = sum(new for _, new in items)
            speed = tokens / seconds
            if backend.name == "today":
                today[workload] = speed
            if not settings.do_sample:
                greedy[backend.name] = [completion.text for completion in completions]
            floor = floor_seconds(shape, limits, items, args.batch_size)
            stops = [sum(completion.stop_reason == reason for completion in completions)
                     for reason in (generation.STOP_EOS, generation.STOP_LENGTH, generation.STOP_LOOP)]  # fmt: skip
            ratio_today = f"{speed / today[workload]:.2f}" if workload in today else "-"
            convert = f"{backend.conversion_seconds:.1f}" if backend.conversion_seconds is not None else "-"
            print(
                f"{workload:<9} {backend.name:<24} {backend.precision:<10} {len(items):>5} {tokens:>6} {speed:>7.1f} "
                f"{seconds / len(items):>7.2f} {ratio_today:>7} {seconds / floor:>7.2f} {convert:>9} "
                f"{'/'.join(map(str, stops))}",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if len(greedy) > 1:
        (reference_name, reference), *others = greedy.items()
        for name, texts in others:
            same = sum(a == b for a, b in zip(reference, texts, strict=True))
            print(f"greedy summaries identical to {reference_name}'s: {name} {same}/{len(reference)}")


def describe_cpu() -> str:
    flags = set()
    model = "?"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    vector = sorted(flag for flag in flags if flag.startswith(("avx", "amx")) or flag in ("fma", "f16c"))
    return f"{model}, {os.cpu_count()} CPUs, {' '.join(vector)}"


if __name__ == "__main__":
    main()
