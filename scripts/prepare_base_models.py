"""Make the offline base models Hub-ready, and publish them (the pipeline's `base` stage).

python scripts/prepare_base_models.py convert [--config models_repo/SmolLM2-135M-Instruct-q4_1/recipe.yaml]
python scripts/prepare_base_models.py publish --config models_repo/SmolLM2-135M-Instruct-q4_1/recipe.yaml

`convert` dequantizes SmolLM2's GGUF to safetensors once (no Hub needed); `publish` converts if needed, then pushes
dialoghub/SmolLM2-135M-Instruct-q4_1 and dialoghub/all-MiniLM-L6-v2 to the Hub HF_ENDPOINT names, tagged.
"""

import dialoghub.core.hubenv  # noqa: F401

import logging
import sys
from dataclasses import dataclass, field

from huggingface_hub import HfApi

from dialoghub.core.recipes import configure_logging, parse_recipe
from dialoghub.hub.client import RELEASE_TAG, hub_session
from dialoghub.models import base_models

COMMANDS = ("convert", "publish")


@dataclass
class BaseModelsArguments:
    """Where the converted SmolLM2 goes, and the release both base models are published as."""

    smollm2_dir: str | None = field(
        default=None, metadata={"help": "The converted model's folder (none: $DIALOGHUB_BASE_DIR/models/<name>)."}
    )
    force: bool = field(default=False, metadata={"help": "convert: again, even if the stamp matches the GGUF."})
    release_tag: str = field(default=RELEASE_TAG, metadata={"help": "publish: the release tag."})


def parse_args(argv=None) -> tuple[str, BaseModelsArguments]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: scripts/prepare_base_models.py {{{','.join(COMMANDS)}}} [--config RECIPE.yaml] [--field value]")
        print(__doc__)
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    command = argv[0]
    prog = f"scripts/prepare_base_models.py {command}"
    return command, parse_recipe(BaseModelsArguments, argv[1:], prog=prog, description=__doc__)


def run(command: str, args: BaseModelsArguments) -> None:
    if command == "convert":
        print(base_models.convert_smollm2(args.smollm2_dir, force=args.force))
        return

    smollm2_dir = base_models.convert_smollm2(args.smollm2_dir, force=args.force)
    with hub_session() as hub:
        api = HfApi(endpoint=hub.endpoint, token=hub.token)
        shas = base_models.publish_base_models(api, smollm2_dir, release_tag=args.release_tag)
    for repo_id, sha in shas.items():
        print(f"{repo_id}@{sha}")


def main(argv=None) -> int:
    configure_logging(logging.INFO)
    try:
        run(*parse_args(argv))
    except (FileNotFoundError, ValueError, base_models.ConversionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
