"""Batched vs. one-at-a-time generation through `dialoghub.models.generation`, in the same run, on the same prompts.

The prompts are summarization prompts of TweetSumm test dialogues (the leaderboard task); decoding is greedy, so the
two modes should write the same texts, and the agreement is printed next to the speed-up. The default model is the
converted SmolLM2 folder (`make setup`); no Hub is needed.

Usage: python benchmarks/generate_bench.py [--model ID_OR_FOLDER] [--prompts 16] [--batch-size 8] [--max-new-tokens 64]
"""

import dialoghub.core.hubenv  # noqa: F401

import argparse
import os
import time

from dialoghub.core.paths import shared_data_dir
from dialoghub.data.tweetsumm import build
from dialoghub.models import prompts
from dialoghub.models.base_models import smollm2_dir
from dialoghub.models.generation import GenerationSettings, load_generator


def timed_generate(generator, conversations, settings):
    started = time.perf_counter()
    completions = generator.generate(conversations, settings, progress=False)
    return time.perf_counter() - started, completions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(smollm2_dir()), help="model id[@rev] or folder (default: %(default)s)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    import torch

    dialogs = build(shared_data_dir() / "tweetsumm").rows["default"]["test"][: args.prompts]
    conversations = [prompts.summarize_messages(dialog["dialogue"], dialog["conversation_id"]) for dialog in dialogs]
    generator = load_generator(args.model)
    generator.generate(conversations[:2], GenerationSettings(max_new_tokens=4, batch_size=2), progress=False)

    results = {}
    for mode, batch_size in (("one at a time", 1), (f"batched ({args.batch_size})", args.batch_size)):
        settings = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=batch_size)
        seconds, completions = timed_generate(generator, conversations, settings)
        tokens = sum(completion.new_tokens for completion in completions)
        results[mode] = (seconds, tokens, [completion.text for completion in completions])

    print(f"Model: {generator.base}; {len(conversations)} prompts, greedy, max_new_tokens={args.max_new_tokens}")
    print(
        f"torch threads: {torch.get_num_threads()}, load average: {os.getloadavg()[0]:.1f} (a shared CPU slows both)"
    )
    print(f"{'mode':<16} {'seconds':>8} {'prompts/s':>10} {'tokens/s':>9}")
    for mode, (seconds, tokens, _) in results.items():
        print(f"{mode:<16} {seconds:>8.1f} {len(conversations) / seconds:>10.2f} {tokens / seconds:>9.1f}")
    (sequential, _, sequential_texts), (batched, _, batched_texts) = results.values()
    same = sum(a == b for a, b in zip(sequential_texts, batched_texts, strict=True))
    print(f"Speed-up of batching: {sequential / batched:.2f}x (prompts/s ratio)")
    print(f"Identical outputs: {same}/{len(conversations)} (left padding can flip a near-tie in float32 arithmetic)")


if __name__ == "__main__":
    main()
