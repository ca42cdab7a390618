"""Publish a trained adapter folder to the Hub, with its model card, as a tagged release, from its training recipe.

python scripts/push_adapter.py --config models_repo/summarizer-lora/recipe.yaml
python scripts/push_adapter.py --config models_repo/summarizer-lora/recipe.yaml --output_dir runs/x --release_tag v2.0
python scripts/push_adapter.py --config models_repo/summarizer-lora/recipe.yaml --merged_model_id org/summarizer-merged

The recipe is the one the adapter was trained with: `output_dir` is the folder published, `hub_model_id` the repo,
`release_tag` the tag. The card is rendered from models_repo/<adapter>/README.md.j2 with the folder's
training_summary.json (written by scripts/train_adapter.py). A tag is a release and never moves: the same adapter
again changes nothing, another adapter under an existing tag is refused (pick a new tag).
"""

import dialoghub.core.hubenv  # noqa: F401

import logging
import sys
from dataclasses import dataclass, field

from dialoghub.core.recipes import configure_logging
from dialoghub.hub.client import hub_session
from dialoghub.sft.card import push_adapter, push_merged
from dialoghub.sft.training import parser


@dataclass
class MergeArguments:
    merged_model_id: str | None = field(
        default=None, metadata={"help": "Also publish the base with the adapter merged in, to this model repo."}
    )


def parse_args(argv=None):
    """(script_args, training_args, model_args, merge_args) from the training recipe and overrides."""
    return parser(MergeArguments, description=__doc__).parse_args_and_config(argv)


def report(release) -> None:
    state = "created" if release.tag_created else "already there"
    print(f"{release.repo_id}@{release.tag} = {release.tag_commit} ({state})")


def main(argv=None) -> int:
    configure_logging(logging.INFO)
    try:
        script_args, training_args, _, merge_args = parse_args(argv)
        if not (training_args.hub_model_id and script_args.release_tag):
            raise ValueError("the recipe needs hub_model_id and release_tag")
        with hub_session():
            report(push_adapter(training_args.output_dir, training_args.hub_model_id, script_args.release_tag))
            if merge_args.merged_model_id:
                report(push_merged(training_args.output_dir, merge_args.merged_model_id, script_args.release_tag))
    except (FileNotFoundError, ValueError) as error:
        print(f"push_adapter: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
