"""Make the offline base models Hub-ready, and publish them.

python scripts/prepare_base_models.py convert   # dequantize SmolLM2's GGUF to safetensors once (no Hub needed)
python scripts/prepare_base_models.py publish   # convert if needed, then push both models to the Hub
"""

import dialoghub.hubenv  # noqa: F401

import argparse
import logging
import sys
from pathlib import Path

from dialoghub import base_models


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser(
        "convert", help=f"write {base_models.SMOLLM2.repo_name} as float32 safetensors (idempotent)"
    )
    convert.add_argument(
        "--output-dir", type=Path, default=None, help="default: $DIALOGHUB_BASE_DIR/models/<model name>"
    )
    convert.add_argument("--force", action="store_true", help="convert again even if the stamp matches the GGUF")
    publish = commands.add_parser(
        "publish",
        help=f"publish {base_models.SMOLLM2.repo_id} and {base_models.MINILM.repo_id} "
        f"(tagged {base_models.RELEASE_TAG}) to the Hub HF_ENDPOINT names",
    )
    publish.add_argument("--smollm2-dir", type=Path, default=None, help="the converted model (default: as convert)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    if args.command == "convert":
        print(base_models.convert_smollm2(args.output_dir, force=args.force))
        return

    from huggingface_hub import HfApi

    from dialoghub.hub.embedded import hub_session

    smollm2_dir = base_models.convert_smollm2(args.smollm2_dir)
    with hub_session() as hub:
        shas = base_models.publish_base_models(HfApi(endpoint=hub.endpoint, token=hub.token), smollm2_dir)
    for repo_id, sha in shas.items():
        print(f"{repo_id}@{sha}")


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(args)
    except (FileNotFoundError, base_models.ConversionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
