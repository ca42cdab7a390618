"""Build org/tweetsumm-provocation from org/tweetsumm-clean at a pinned revision and publish it as a tagged release.

    python scripts/build_provocation.py --config datasets_repo/tweetsumm-provocation/recipe.yaml [--field value ...]

`test`: every validation and test dialog whose customer text the scorer flags, and every test dialog with a phrase
of the abuse list's `evaluation` phrases inserted; `train`: the same from the train split with the `train` phrases;
`validation`: every unflagged validation dialog with a `validation` phrase (see dialoghub/data/provocation.py).
A rebuild of the same input makes no new commit; a tag never moves.
"""

import dialoghub.core.hubenv  # noqa: F401

import sys
from dataclasses import dataclass, field

from dialoghub.core.paths import REPO_ROOT, project_org
from dialoghub.core.recipes import configure_logging, parse_recipe
from dialoghub.data.provocation import (
    ABUSE_PHRASES_FILE,
    INSERTED_ID_SUFFIX,
    PROVOCATION_RELEASE,
    build_provocation_rows,
    load_abuse_list,
    publish,
)
from dialoghub.hub.client import RELEASE_TAG, hub_session, resolve_repo
from dialoghub.metrics.toxicity import PROFANITY_CHECK, TOXIC_THRESHOLD, load_toxicity_scorer


@dataclass
class ProvocationArguments:
    source: str = field(
        default=f"{project_org()}/tweetsumm-clean@{RELEASE_TAG}", metadata={"help": "The TweetSumm dataset, ID[@REV]."}
    )
    abuse_phrases: str = field(
        default=str(ABUSE_PHRASES_FILE.relative_to(REPO_ROOT)), metadata={"help": "The versioned abuse list (YAML)."}
    )
    toxicity: str = field(
        default="profanity-check", metadata={"help": "The scorer flagging customer text: profanity-check or ID[@REV]."}
    )
    repo_id: str = field(default=f"{project_org()}/tweetsumm-provocation", metadata={"help": "Dataset repo."})
    tag: str | None = field(
        default=PROVOCATION_RELEASE, metadata={"help": "Release tag (created if missing, never moved)."}
    )


def parse_args(argv=None) -> ProvocationArguments:
    return parse_recipe(ProvocationArguments, argv, prog="scripts/build_provocation.py", description=__doc__)


def load_scorer(reference: str):
    """The scorer and its record name, a classifier pinned to the commit its revision points at now."""
    if reference == PROFANITY_CHECK:
        return load_toxicity_scorer(PROFANITY_CHECK)
    resolved = resolve_repo(reference)
    return load_toxicity_scorer(resolved.repo_id, revision=resolved.sha)


def build(args: ProvocationArguments):
    """(rows by split, card context) from the arguments."""
    from datasets import load_dataset

    source = resolve_repo(args.source, repo_type="dataset")
    dataset = load_dataset(source.repo_id, revision=source.sha)
    abuse = load_abuse_list(
        REPO_ROOT / args.abuse_phrases if not args.abuse_phrases.startswith("/") else args.abuse_phrases
    )
    scorer = load_scorer(args.toxicity)
    rows = build_provocation_rows(
        {split: dataset[split].to_list() for split in dataset}, abuse, scorer, TOXIC_THRESHOLD
    )
    context = {
        "source": args.source,
        "source_repo": source.repo_id,
        "source_sha": source.sha,
        "scorer": scorer.name,
        "threshold": TOXIC_THRESHOLD,
        "abuse": abuse,
        "inserted_suffix": INSERTED_ID_SUFFIX,
    }
    return rows, context


def main(argv=None) -> int:
    configure_logging()

    try:
        args = parse_args(argv)
        with hub_session():
            rows, context = build(args)
            print("Rows: " + ", ".join(f"{split} {len(split_rows)}" for split, split_rows in rows.items()))
            published = publish(rows, args.repo_id, tag=args.tag, context=context)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    state = "new commit" if published.new_commit else "unchanged, no new commit"
    print(
        f"Published {published.repo_id} at {published.commit} ({state}); tag {published.tag} = {published.tag_commit}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
