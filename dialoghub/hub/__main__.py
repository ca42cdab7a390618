"""`python -m dialoghub.hub serve --root DIR [--host 127.0.0.1] [--port N] [--token T]`"""

import argparse
import logging
import os

from dialoghub.hub.client import hub_is_up
from dialoghub.hub.server.app import create_app
from dialoghub.hub.server.faults import install_fault_injection
from dialoghub.hub.server.pagination import DEFAULT_PAGE_SIZE
from dialoghub.hub.server.serving import serve as serve_app


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
    serve.add_argument("--max-headers", type=int, default=100, help="Cap on the number of request headers")
    serve.add_argument("--max-header-kb", type=int, default=64, help="Cap on the size of a request's headers")
    serve.add_argument(
        "--header-timeout", type=float, default=10.0, help="Seconds a client has to send a request's headers"
    )
    serve.add_argument(
        "--body-timeout", type=float, default=10.0, help="Seconds a request's body may stall before it is dropped"
    )
    serve.add_argument(
        "--max-connections", type=int, default=64, help="Connections served at once; more get 503 (uvicorn)"
    )
    serve.add_argument(
        "--inference-url",
        default=os.environ.get("DIALOGHUB_INFERENCE_URL"),
        help="The inference server (python -m dialoghub.inference) the model pages' widget calls "
        "(env: DIALOGHUB_INFERENCE_URL)",
    )
    serve.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    endpoint = f"http://{args.host}:{args.port}"
    if hub_is_up(endpoint):
        parser.exit(1, f"Something already serves a Hub on {endpoint}\n")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger(__name__).warning("Binding to %s: the Hub is reachable beyond this machine", args.host)
    try:
        app = create_app(
            args.root,
            token=args.token,
            max_body_bytes=args.max_body_mb << 20,
            max_lfs_bytes=args.max_lfs_gb << 30,
            max_headers=args.max_headers,
            max_header_bytes=args.max_header_kb << 10,
            page_size=args.page_size,
            inference_url=args.inference_url,
        )
    except RuntimeError as error:  # the root is owned by another server
        parser.exit(1, f"{error}\n")
    install_fault_injection(app, args.root)
    print(f"dialoghub embedded Hub serving {os.path.abspath(args.root)} on {endpoint}", flush=True)
    serve_app(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        max_header_bytes=args.max_header_kb << 10,
        header_timeout=args.header_timeout,
        max_connections=args.max_connections,
        body_timeout=args.body_timeout,
    )


if __name__ == "__main__":
    main()
