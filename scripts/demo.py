"""Serve the dialoghub demo on loopback (`make demo`), optionally publishing it as a Space repo first.

    python scripts/demo.py [--port 7860] [--publish] [--space-repo org/dialoghub-demo]

Models, adapters, dataset and results repo are read from the Hub that HF_ENDPOINT names (the embedded one by
default); see `dialoghub.demo.DemoConfig` for the DIALOGHUB_DEMO_* variables that override them.
"""

import dialoghub.hubenv  # noqa: F401

import argparse

from huggingface_hub import HfApi

from dialoghub.demo import DemoConfig, build_demo, publish_space
from dialoghub.hub.embedded import hub_session
from dialoghub.paths import project_org


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--publish", action="store_true", help="publish the app as a Space repo before serving")
    parser.add_argument("--space-repo", default=f"{project_org()}/dialoghub-demo")
    args = parser.parse_args()
    config = DemoConfig.from_env()
    with hub_session():
        if args.publish:
            print(f"Space {args.space_repo}@{publish_space(HfApi(), args.space_repo, config)}")
        build_demo(config).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
