"""Generate Customer/Agent dialogues from summaries with a causal LM, filter them, and publish the dataset.

    python scripts/generate_dialogues.py --config datasets_repo/synthetic-dialogues/recipe.yaml [--field value ...]
    python scripts/generate_dialogues.py --config datasets_repo/synthetic-dialogues/recipe.yaml \
        --splits train=200,validation=50,test=50 --model meta-llama/Llama-3.1-8B-Instruct --load_in_4bit true

Every field of `SyntheticConfig` (with its `GenerationSettings` and `FilterConfig` fields) is a flag; see --help.
Every generated batch is written to a shard under the work directory as soon as it is filtered; run the same
command again after an interruption (even kill -9) and it continues where it stopped. Rows that fail a filter are
published too, in the `rejected` config, with their reasons. `adapter: auto` uses org/dialogue-generator-lora when it
is on the Hub; `summarizer_adapter: auto` likewise enables the round-trip filter with org/summarizer-lora.
"""

import dialoghub.core.hubenv  # noqa: F401

import dataclasses
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dialoghub.core.recipes import configure_logging, parse_recipe
from dialoghub.hub.client import hub_session
from dialoghub.synthetic import default_repo_id
from dialoghub.synthetic.closeness import format_closeness
from dialoghub.synthetic.comparison import format_comparison
from dialoghub.synthetic.publish import NothingToPublishError, publish
from dialoghub.synthetic.run import (
    DEFAULT_GENERATOR_ADAPTER,
    DEFAULT_SUMMARIZER_ADAPTER,
    SyntheticConfig,
    default_few_shot,
    filter_counts,
    generate_dialogues,
    resolve_auto,
)
from dialoghub.synthetic.shards import RunMismatchError

AUTO = "auto"


@dataclass
class GenerateDialoguesArguments(SyntheticConfig):
    """`SyntheticConfig`, with `auto` adapters and few-shot, plus where the rows go."""

    adapter: str | None = field(
        default=AUTO,
        metadata={"help": f"PEFT adapter ID[@REV], auto ({DEFAULT_GENERATOR_ADAPTER} if it exists) or none."},
    )
    few_shot: int | None = field(
        default=None, metadata={"help": "Examples in each prompt (none: 1 without an adapter, 0 with one)."}
    )
    summarizer_adapter: str | None = field(
        default=AUTO,
        metadata={"help": f"Round-trip summarizer adapter, auto ({DEFAULT_SUMMARIZER_ADAPTER} if it exists) or none."},
    )
    repo_id: str = field(default_factory=default_repo_id, metadata={"help": "Dataset repo to publish to."})
    tag: str | None = field(default=None, metadata={"help": "Tag the published commit if the tag is new, e.g. v1.0."})
    work_dir: str | None = field(default=None, metadata={"help": "Where shards go (none: one folder per settings)."})
    push: bool = field(default=True, metadata={"help": "Publish (false: generate and filter only)."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})
    threads: int | None = field(
        default=None,
        metadata={
            "help": "Torch CPU threads (none: torch's choice). On a CPU shared with other jobs, 1 can be several "
            "times faster than 2: threads that wait for each other at every operation lose the most when descheduled."
        },
    )

    def run_config(self) -> SyntheticConfig:
        """The `SyntheticConfig` to run, `auto` resolved against the Hub."""
        values = {item.name: getattr(self, item.name) for item in dataclasses.fields(SyntheticConfig)}
        adapter = resolve_auto(self.adapter, DEFAULT_GENERATOR_ADAPTER)
        return SyntheticConfig(
            **values
            | {
                "adapter": adapter,
                "few_shot": default_few_shot(adapter) if self.few_shot is None else self.few_shot,
                "summarizer_adapter": resolve_auto(self.summarizer_adapter, DEFAULT_SUMMARIZER_ADAPTER),
            }
        )


def parse_args(argv: list[str] | None = None) -> GenerateDialoguesArguments:
    return parse_recipe(GenerateDialoguesArguments, argv, prog="scripts/generate_dialogues.py", description=__doc__)


def main(argv: list[str] | None = None) -> int:
    configure_logging(logging.WARNING, "dialoghub")
    started = time.perf_counter()
    try:
        args = parse_args(argv)
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        with hub_session() as hub:
            print(f"Hub: {hub.endpoint}")
            config = args.run_config()
            work_dir = Path(args.work_dir) if args.work_dir else None
            result = generate_dialogues(config, work_dir=work_dir, progress=args.progress)
            print(f"Work directory: {result.work_dir}")
            for split in config.splits:
                print(
                    f"{split}: generated {len(result.rows[split])}, kept {len(result.kept(split))} of "
                    f"{config.splits[split]} wanted, rejected {len(result.rejected(split))}"
                )
            print("Filter                 examined  rejected")
            for count in filter_counts(result.all_rows()):
                print(f"  {count['name']:<20} {count['examined']:>8} {count['rejected']:>9}")
            if result.comparison:
                print(format_comparison(result.comparison))
            if result.closeness:
                print(format_closeness(result.closeness))
            generated = len(result.all_rows())
            print(f"Elapsed: {time.perf_counter() - started:.0f}s for {generated} generated dialogue(s)")
            if not args.push:
                return 0
            published = publish(result, args.repo_id, tag=args.tag)
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
