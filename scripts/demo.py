"""Serve the dialoghub demo on loopback (`make demo`), optionally publishing it as a Space repo first.

    python scripts/demo.py --config spaces/dialoghub-demo/recipe.yaml [--port 7860] [--publish true]

Models, adapters, dataset and results repo (the fields of `dialoghub.demo.app.DemoConfig`) are read from the Hub that
HF_ENDPOINT names (the embedded one by default). The published Space reads the same settings from DIALOGHUB_DEMO_*
variables instead.
"""

import dialoghub.core.hubenv  # noqa: F401

import dataclasses
import sys
from dataclasses import dataclass, field

from dialoghub.core.paths import project_org
from dialoghub.core.recipes import configure_logging, parse_recipe
from dialoghub.demo.app import DemoConfig, build_demo, publish_space
from dialoghub.hub.client import hub_session


@dataclass(frozen=True)
class DemoArguments(DemoConfig):
    """`DemoConfig`, plus where to serve it and whether to publish it as a Space first."""

    host: str = field(default="127.0.0.1", metadata={"help": "Address to serve on (loopback by default)."})
    port: int = field(default=7860, metadata={"help": "Port to serve on."})
    publish: bool = field(default=False, metadata={"help": "Publish the app as a Space repo before serving."})
    space_repo: str = field(default=f"{project_org()}/dialoghub-demo", metadata={"help": "The Space repo."})

    def demo_config(self) -> DemoConfig:
        return DemoConfig(**{item.name: getattr(self, item.name) for item in dataclasses.fields(DemoConfig)})


def parse_args(argv=None) -> DemoArguments:
    return parse_recipe(DemoArguments, argv, prog="scripts/demo.py", description=__doc__)


def main(argv=None) -> int:
    configure_logging()
    from huggingface_hub import HfApi

    try:
        args = parse_args(argv)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = args.demo_config()
    with hub_session():
        if args.publish:
            print(f"Space {args.space_repo}@{publish_space(HfApi(), args.space_repo, config)}")
        build_demo(config).launch(server_name=args.host, server_port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
