"""Synthetic-dialogue throughput, batched vs. sequential, in the same run: the real per-batch path of
`dialoghub.synthetic` (prompting, sampling with the loop detector, parsing and every text filter), on the same
TweetSumm validation summaries, with batches of `--batch-size` and then of 1.

Sampling draws differ between the two modes (each batch has its own seed), so generated tokens/s is printed beside
dialogues/s, and the kept fraction of each. The default model is the converted SmolLM2 folder (`make setup`).

Usage: python benchmarks/synth_bench.py [--model ID_OR_FOLDER] [--adapter ID] [--dialogues 8] [--batch-size 8]
"""

import dialoghub.core.hubenv  # noqa: F401

import argparse
import dataclasses
import os
import time

from dialoghub.core.paths import shared_data_dir
from dialoghub.data.tweetsumm import build
from dialoghub.models.base_models import smollm2_dir
from dialoghub.models.generation import load_generator
from dialoghub.synthetic.run import (
    DEFAULT_GENERATION,
    KEPT,
    DialogueFactory,
    FewShotPool,
    SyntheticConfig,
    candidates_of,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(smollm2_dir()), help="model id[@rev] or folder (default: %(default)s)")
    parser.add_argument("--adapter", help="PEFT adapter id[@rev] or folder")
    parser.add_argument("--dialogues", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--few-shot", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_GENERATION.max_new_tokens)
    args = parser.parse_args()

    import torch

    rows = build(shared_data_dir() / "tweetsumm").rows["default"]
    generator = load_generator(args.model, args.adapter)
    results = {}
    for mode, batch_size in (("sequential", 1), (f"batched ({args.batch_size})", args.batch_size)):
        generation = dataclasses.replace(DEFAULT_GENERATION, max_new_tokens=args.max_new_tokens, batch_size=batch_size)
        config = SyntheticConfig(model=args.model, few_shot=args.few_shot, generation=generation)
        candidates = candidates_of(rows["validation"], config, "validation")[: args.dialogues]
        pool = FewShotPool(rows["train"], config) if args.few_shot else None
        factory = DialogueFactory(config, generator, summarizer=None)
        started = time.perf_counter()
        made = []
        for chunk, start in enumerate(range(0, len(candidates), batch_size)):
            made += factory.make_rows("bench", chunk, candidates[start : start + batch_size], pool)
        seconds = time.perf_counter() - started
        results[mode] = (seconds, sum(row["new_tokens"] for row in made), sum(row["status"] == KEPT for row in made))

    adapter = f" + {generator.adapter}" if generator.adapter else ""
    print(f"Model: {generator.base}{adapter}; {args.dialogues} summaries, {args.few_shot}-shot, "
          f"max_new_tokens={args.max_new_tokens}, sampling with the loop detector")  # fmt: skip
    print(
        f"torch threads: {torch.get_num_threads()}, load average: {os.getloadavg()[0]:.1f} (a shared CPU slows both)"
    )
    print(f"{'mode':<14} {'seconds':>8} {'dialogues/s':>12} {'tokens/s':>9} {'kept':>5}")
    for mode, (seconds, tokens, kept) in results.items():
        print(f"{mode:<14} {seconds:>8.1f} {args.dialogues / seconds:>12.3f} {tokens / seconds:>9.1f} {kept:>5}")
    (sequential, sequential_tokens, _), (batched, batched_tokens, _) = results.values()
    print(f"Speed-up of batching: {sequential / batched:.2f}x dialogues/s, "
          f"{(batched_tokens / batched) / (sequential_tokens / sequential):.2f}x tokens/s")  # fmt: skip


if __name__ == "__main__":
    main()
