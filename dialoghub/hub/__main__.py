"""`python -m dialoghub.hub serve --root DIR [--host 127.0.0.1] [--port N] [--token T]`"""

import argparse
import logging
import os

from dialoghub.hub.embedded import hub_is_up
from dialoghub.hub.pagination import DEFAULT_PAGE_SIZE


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dialoghub.hub", description=__doc__.strip("`"))
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="Serve the Hub HTTP API over the git repos under --root")
    serve.add_argument("--root", required=True, help="Folder holding {models,datasets,spaces}/ORG/NAME.git and lfs/")
    serve.add_argument("--host", default="127.0.0.1", help="Interface to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument(
        "--token",
        default=os.environ.get("DIALOGHUB_HUB_TOKEN"),
        help="If set, writes and private reads need `Authorization: Bearer <token>` (env: DIALOGHUB_HUB_TOKEN)",
    )
    serve.add_argument("--max-body-mb", type=int, default=256, help="Cap on API request bodies")
    serve.add_argument("--max-lfs-gb", type=int, default=50, help="Cap on one LFS upload")
    serve.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE, help="Items per page of a listing")
    serve.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    import uvicorn

    from dialoghub.hub.server import create_app

    endpoint = f"http://{args.host}:{args.port}"
    if hub_is_up(endpoint):
        parser.exit(1, f"Something already serves a Hub on {endpoint}\n")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger(__name__).warning("Binding to %s: the Hub is reachable beyond this machine", args.host)
    app = create_app(
        args.root,
        token=args.token,
        max_body_bytes=args.max_body_mb << 20,
        max_lfs_bytes=args.max_lfs_gb << 30,
        page_size=args.page_size,
    )
    print(f"dialoghub embedded Hub serving {os.path.abspath(args.root)} on {endpoint}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
