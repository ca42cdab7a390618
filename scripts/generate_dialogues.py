"""Generate Customer/Agent dialogues from summaries with a causal LM, filter them, and publish the dataset.

    python scripts/generate_dialogues.py                                   # 200/50/50 from org/tweetsumm-clean
    python scripts/generate_dialogues.py --splits train=20,validation=5,test=5 --few-shot 1
    python scripts/generate_dialogues.py --model meta-llama/Llama-3.1-8B-Instruct --load-in-4bit --adapter none

Every generated batch is written to a shard under the work directory as soon as it is filtered; run the same
command again after an interruption (even kill -9) and it continues where it stopped. Rows that fail a filter are
published too, in the `rejected` config, with their reasons. `--adapter auto` (default) uses
org/dialogue-generator-lora when it is on the Hub; `--summarizer-adapter auto` likewise enables the round-trip
filter with org/summarizer-lora.
"""

import dialoghub.hubenv  # noqa: F401

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

from dialoghub.generation import BACKENDS, add_generation_arguments, generation_settings_from_args
from dialoghub.hub.embedded import hub_session
from dialoghub.hub.refs import optional_reference
from dialoghub.synthetic import default_repo_id
from dialoghub.synthetic.filters import FilterConfig
from dialoghub.synthetic.publish import NothingToPublishError, publish
from dialoghub.synthetic.run import (
    DEFAULT_GENERATION,
    DEFAULT_GENERATOR_ADAPTER,
    DEFAULT_MODEL,
    DEFAULT_SOURCE,
    DEFAULT_SPLITS,
    DEFAULT_SUMMARIZER_ADAPTER,
    SyntheticConfig,
    default_few_shot,
    filter_counts,
    generate_dialogues,
    resolve_auto,
)
from dialoghub.synthetic.shards import RunMismatchError


def mapping(text: str, value_type=str) -> dict:
    """`a=1,b=2` -> {"a": 1, "b": 2}."""
    pairs = {}
    for item in text.split(","):
        key, separator, value = item.partition("=")
        if not separator or not key.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE[,NAME=VALUE...]")
        try:
            pairs[key.strip()] = value_type(value.strip())
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{text!r}: {error}") from error
    return pairs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("input")
    data.add_argument("--source", default=DEFAULT_SOURCE, help="dataset repo id (or ID@REV) holding the summaries")
    data.add_argument("--source-revision", help="branch, tag or commit of --source")
    data.add_argument("--source-config", help="dataset config of --source")
    data.add_argument("--summary-column", default="summaries", help="string or list-of-strings column")
    data.add_argument("--id-column", default="conversation_id")
    data.add_argument("--dialogue-column", default="dialogue", help="read for few-shot examples only")
    data.add_argument("--first-summary-only", action="store_true", help="one candidate per row, not one per summary")
    data.add_argument(
        "--splits",
        type=lambda text: mapping(text, int),
        default=DEFAULT_SPLITS,
        help="output split=number of dialogues to keep (default: %(default)s)",
    )
    data.add_argument(
        "--source-splits", type=mapping, help="output split=source split (default: the same names), e.g. test=valid"
    )

    model = parser.add_argument_group("model")
    model.add_argument("--model", type=optional_reference, default=DEFAULT_MODEL, help="causal LM id[@rev] or folder")
    model.add_argument("--adapter", type=optional_reference, default="auto",
                       help=f"PEFT adapter id[@rev], 'auto' or 'none' "
                            f"(auto: {DEFAULT_GENERATOR_ADAPTER} if it exists)")  # fmt: skip
    model.add_argument("--load-in-4bit", action="store_true", help="quantize the model with bitsandbytes (GPU)")
    model.add_argument("--backend", choices=BACKENDS, default="auto", help="vllm is used only if installed")
    model.add_argument("--few-shot", type=int, help="k examples from --few-shot-split in each prompt (default: 1 "
                       "without an adapter, 0 with one)")  # fmt: skip
    model.add_argument("--few-shot-split", default="train")
    model.add_argument(
        "--few-shot-max-words", type=int, default=150, help="draw examples among dialogues this short (0: any)"
    )
    model.add_argument("--seed", type=int, default=0)

    add_generation_arguments(parser, DEFAULT_GENERATION)

    checks = parser.add_argument_group("filters")
    for item in dataclasses.fields(FilterConfig):
        name = f"--{item.name.replace('_', '-')}"
        if isinstance(item.default, bool):
            checks.add_argument(name, action=argparse.BooleanOptionalAction, default=item.default)
        else:
            checks.add_argument(name, type=type(item.default), default=item.default)
    checks.add_argument("--toxicity-scorer", default="profanity-check", help="profanity-check or a classifier id")
    checks.add_argument("--summarizer", type=optional_reference,
                        help="round-trip summarizer model id[@rev] (default: the adapter's base)")  # fmt: skip
    checks.add_argument("--summarizer-adapter", type=optional_reference, default="auto",
                        help=f"round-trip summarizer adapter, "
                        f"'auto' or 'none' (auto: {DEFAULT_SUMMARIZER_ADAPTER} if it exists)")  # fmt: skip

    output = parser.add_argument_group("output")
    output.add_argument("--repo-id", default=default_repo_id(), help="dataset repo to publish to")
    output.add_argument("--tag", default="v1.0", help="release tag; an existing tag is never moved ('none': no tag)")
    output.add_argument("--work-dir", type=Path, help="where shards go (default: one folder per settings)")
    output.add_argument("--no-push", action="store_true", help="generate and filter only")
    output.add_argument("--no-progress", action="store_true")
    output.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: torch's choice). On a CPU shared with other jobs, 1 can be several times "
        "faster than 2: threads that wait for each other at every operation lose the most when descheduled",
    )
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> SyntheticConfig:
    generation = generation_settings_from_args(args)
    thresholds = FilterConfig(**{item.name: getattr(args, item.name) for item in dataclasses.fields(FilterConfig)})
    summarizer_adapter = resolve_auto(args.summarizer_adapter, DEFAULT_SUMMARIZER_ADAPTER)
    adapter = resolve_auto(args.adapter, DEFAULT_GENERATOR_ADAPTER)
    return SyntheticConfig(
        source=args.source,
        source_revision=args.source_revision,
        source_config=args.source_config,
        summary_column=args.summary_column,
        id_column=args.id_column,
        dialogue_column=args.dialogue_column,
        all_summaries=not args.first_summary_only,
        splits=args.splits,
        source_splits=args.source_splits,
        model=args.model,
        adapter=adapter,
        load_in_4bit=args.load_in_4bit,
        few_shot=default_few_shot(adapter) if args.few_shot is None else args.few_shot,
        few_shot_split=args.few_shot_split,
        few_shot_max_words=args.few_shot_max_words or None,
        seed=args.seed,
        generation=generation,
        filters=thresholds,
        toxicity_scorer=args.toxicity_scorer,
        summarizer=args.summarizer,
        summarizer_adapter=summarizer_adapter,
        backend=args.backend,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("dialoghub").setLevel(logging.INFO)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    try:
        with hub_session() as hub:
            print(f"Hub: {hub.endpoint}")
            config = build_config(args)
            result = generate_dialogues(config, work_dir=args.work_dir, progress=not args.no_progress)
            print(f"Work directory: {result.work_dir}")
            for split in config.splits:
                print(
                    f"{split}: generated {len(result.rows[split])}, kept {len(result.kept(split))} of "
                    f"{config.splits[split]} wanted, rejected {len(result.rejected(split))}"
                )
            print("Filter                 examined  rejected")
            for count in filter_counts(result.all_rows()):
                print(f"  {count['name']:<20} {count['examined']:>8} {count['rejected']:>9}")
            generated = len(result.all_rows())
            print(f"Elapsed: {time.perf_counter() - started:.0f}s for {generated} generated dialogue(s)")
            if args.no_push:
                return 0
            tag = optional_reference(args.tag)
            published = publish(result, args.repo_id, tag=tag)
    except (ValueError, RunMismatchError, NothingToPublishError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    state = "new commit" if published.new_commit else "unchanged, no new commit"
    print(f"Published {published.repo_id} at {published.commit} ({state})")
    if published.tag:
        where = "created" if published.tag_created else f"kept at {published.tag_commit}"
        print(f"Tag {published.tag}: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
