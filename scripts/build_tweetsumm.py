"""Build org/tweetsumm-clean from a TweetSumm source and publish it to the Hub that HF_ENDPOINT names.

    python scripts/build_tweetsumm.py --source ../shared/data/tweetsumm --repo-id org/tweetsumm-clean --tag v1.0

The source is a local file or folder (IBM processor JSONL, DialogStudio JSON, or the official ID files with
twcs.csv), or a Hub dataset repo id holding one of those. Invalid rows stop the build with every error listed and
nothing pushed, unless --drop-invalid is given. A rebuild of the same input makes no new commit.
"""

import dialoghub.hubenv  # noqa: F401

import argparse
import sys
from pathlib import Path

from dialoghub.data.cleaning import CleaningOptions
from dialoghub.data.readers import SourceError
from dialoghub.data.tweetsumm import build, default_rejects_report, publish
from dialoghub.data.validation import NEAR_DUPLICATE_JACCARD, DatasetValidationError, write_rejects_report
from dialoghub.hub.embedded import hub_session
from dialoghub.hub.publish import TagConflictError
from dialoghub.paths import project_org


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="local file/folder, or a Hub dataset repo id (owner/name)")
    parser.add_argument("--source-revision", help="branch, tag or commit of a Hub source")
    parser.add_argument("--twcs", type=Path, help="Kaggle twcs.csv for the official ID files (default: beside them)")
    parser.add_argument("--repo-id", default=f"{project_org()}/tweetsumm-clean", help="dataset repo to publish to")
    parser.add_argument("--tag", help="tag the published commit (created only if missing), e.g. v1.0")
    parser.add_argument("--drop-invalid", action="store_true", help="leave invalid rows out and report them")
    parser.add_argument("--rejects-report", type=Path, help="where --drop-invalid writes its JSONL report")
    parser.add_argument("--lowercase", action="store_true", help="lowercase every text (off by default)")
    parser.add_argument(
        "--strip-special-chars", action="store_true", help="remove emoji and other symbols (off by default)"
    )
    parser.add_argument(
        "--near-duplicate-threshold",
        type=float,
        default=NEAR_DUPLICATE_JACCARD,
        help="word 5-gram Jaccard at which dialogs in different splits are reported as leakage",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = CleaningOptions(lowercase=args.lowercase, strip_special_characters=args.strip_special_chars)
    try:
        with hub_session() as hub:
            print(f"Hub: {hub.endpoint}")
            result = build(
                args.source,
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
                report = args.rejects_report or default_rejects_report(args.repo_id)
                write_rejects_report(result.rejections, report)
                print(f"Dropped {len(result.rejections)} invalid row(s); report: {report}")
            for pair in result.near_duplicates:
                print(
                    f"Leakage: {pair.conversation_id} ({pair.split}) ~ {pair.other_conversation_id} "
                    f"({pair.other_split}), Jaccard {pair.jaccard}"
                )
            published = publish(result, args.repo_id, tag=args.tag)
    except (SourceError, DatasetValidationError, TagConflictError) as error:
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
