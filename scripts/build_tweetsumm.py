"""Build org/tweetsumm-clean from a TweetSumm source and publish it to the Hub that HF_ENDPOINT names.

    python scripts/build_tweetsumm.py --config datasets_repo/tweetsumm-clean/recipe.yaml [--field value ...]
    python scripts/build_tweetsumm.py --config datasets_repo/tweetsumm-clean/recipe.yaml --source ./my-export

The source is a local file or folder (IBM processor JSONL, DialogStudio JSON, or the official ID files with
twcs.csv), or a Hub dataset repo id holding one of those. Invalid rows stop the build with every error listed and
nothing pushed, unless drop_invalid is set. A rebuild of the same input makes no new commit.
"""

import dialoghub.core.hubenv  # noqa: F401

import sys
from dataclasses import dataclass, field
from pathlib import Path

from dialoghub.core.paths import project_org, shared_data_dir
from dialoghub.core.recipes import configure_logging, parse_recipe
from dialoghub.data.cleaning import CleaningOptions
from dialoghub.data.readers import SourceError
from dialoghub.data.tweetsumm import build, default_rejects_report, publish
from dialoghub.data.validation import NEAR_DUPLICATE_JACCARD, DatasetValidationError, write_rejects_report
from dialoghub.hub.client import hub_session


@dataclass
class BuildArguments:
    """The dataset build stage: which TweetSumm source, how to clean it, where to publish."""

    source: str | None = field(
        default=None,
        metadata={"help": "Local file/folder, or a Hub dataset repo id; none: $DIALOGHUB_SHARED_DATA/tweetsumm."},
    )
    source_revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a Hub source."})
    twcs: str | None = field(
        default=None, metadata={"help": "Kaggle twcs.csv for the official ID files (none: beside them)."}
    )
    repo_id: str = field(default=f"{project_org()}/tweetsumm-clean", metadata={"help": "Dataset repo to publish to."})
    tag: str | None = field(
        default=None, metadata={"help": "Tag the published commit (created only if missing), e.g. v1.0."}
    )
    drop_invalid: bool = field(default=False, metadata={"help": "Leave invalid rows out and report them."})
    rejects_report: str | None = field(
        default=None, metadata={"help": "Where drop_invalid writes its JSONL report (none: under the base dir)."}
    )
    lowercase: bool = field(default=False, metadata={"help": "Lowercase every text."})
    strip_special_chars: bool = field(default=False, metadata={"help": "Remove emoji and other symbols."})
    near_duplicate_threshold: float = field(
        default=NEAR_DUPLICATE_JACCARD,
        metadata={"help": "Word 5-gram Jaccard at which dialogs in different splits are reported as leakage."},
    )

    @property
    def source_or_default(self) -> str:
        return self.source or str(shared_data_dir() / "tweetsumm")


def parse_args(argv: list[str] | None = None) -> BuildArguments:
    return parse_recipe(BuildArguments, argv, prog="scripts/build_tweetsumm.py", description=__doc__)


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        args = parse_args(argv)
        options = CleaningOptions(lowercase=args.lowercase, strip_special_characters=args.strip_special_chars)
        with hub_session() as hub:
            print(f"Hub: {hub.endpoint}")
            result = build(
                args.source_or_default,
                twcs=args.twcs,
                source_revision=args.source_revision,
                options=options,
                drop_invalid=args.drop_invalid,
                near_duplicate_threshold=args.near_duplicate_threshold,
            )
            print(f"Read {result.source.description}")
            print("Rows: " + ", ".join(f"{split} {size}" for split, size in result.split_sizes.items()))
            print("Cleaning changes:")
            for name, count in result.cleaning_counts.items():
                print(f"  {name:<26} {count:>7}")
            if args.drop_invalid:
                report = Path(args.rejects_report) if args.rejects_report else default_rejects_report(args.repo_id)
                write_rejects_report(result.rejections, report)
                print(f"Dropped {len(result.rejections)} invalid row(s); report: {report}")
            for pair in result.near_duplicates:
                print(
                    f"Leakage: {pair.conversation_id} ({pair.split}) ~ {pair.other_conversation_id} "
                    f"({pair.other_split}), Jaccard {pair.jaccard}"
                )
            published = publish(result, args.repo_id, tag=args.tag)
    except (ValueError, SourceError, DatasetValidationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    state = "new commit" if published.new_commit else "unchanged, no new commit"
    print(f"Published {published.repo_id} at {published.commit} ({state})")
    if published.tag_created:
        print(f"Tag {published.tag}: created")
    elif published.tag_commit == published.commit:
        print(f"Tag {published.tag}: already there")
    elif published.tag:
        print(
            f"Tag {published.tag}: kept at {published.tag_commit}, "
            "which has the same data files (only the card changed)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
