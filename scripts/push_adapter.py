"""Publish a trained adapter folder to the Hub, with its model card, as a tagged release.

python scripts/push_adapter.py runs/summarizer-lora org/summarizer-lora --tag v1.0
python scripts/push_adapter.py runs/summarizer-lora org/summarizer-lora --merge org/summarizer-merged

The card is rendered from models_repo/<adapter>/README.md.j2 with the folder's training_summary.json (written by
scripts/train_adapter.py). A tag is a release and never moves: the same adapter again changes nothing, another
adapter under an existing tag is refused (pick a new tag).
"""

import dialoghub.hubenv  # noqa: F401

import argparse
import logging
import sys
from pathlib import Path

from dialoghub.cards import DEFAULT_RELEASE_TAG, push_adapter, push_merged
from dialoghub.hub.publish import Publication


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapter_dir", type=Path, help="output_dir of scripts/train_adapter.py")
    parser.add_argument("repo_id", help="adapter repo, e.g. org/summarizer-lora")
    parser.add_argument("--tag", default=DEFAULT_RELEASE_TAG, help=f"release tag (default {DEFAULT_RELEASE_TAG})")
    parser.add_argument("--merge", metavar="REPO_ID", help="also publish the base with the adapter merged in, here")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    report(push_adapter(args.adapter_dir, args.repo_id, args.tag))
    if args.merge:
        report(push_merged(args.adapter_dir, args.merge, args.tag))


def report(release: Publication) -> None:
    state = "created" if release.tag_created else "already there"
    print(f"{release.repo_id}@{release.tag} = {release.tag_commit} ({state})")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"push_adapter: {error}")
