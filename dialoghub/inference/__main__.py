"""`python -m dialoghub.inference serve [--host 127.0.0.1] [--port 8766] [--allow-origin URL ...]`, or
`python -m dialoghub.inference with-hub --root DIR [--hub-port 8765] [--port 8766]` (`make hub`): the Hub and the
inference server its pages call, stopped together."""

import dialoghub.core.hubenv  # noqa: F401 - first: the HF libraries read HF_ENDPOINT when imported

import argparse
import logging
import sys

import uvicorn

from dialoghub.core.paths import hub_root
from dialoghub.core.recipes import configure_logging
from dialoghub.inference.launcher import serve_hub_with_inference
from dialoghub.inference.server import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_LOADED,
    DEFAULT_MAX_NEW_TOKENS_CAP,
    DEFAULT_MAX_WAITING,
    create_app,
)

DEFAULT_PORT = 8766


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dialoghub.inference", description=__doc__.strip("`"))
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="Serve /v1/chat/completions for the models and adapters on the Hub")
    serve.add_argument("--host", default="127.0.0.1", help="Interface to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        help="A web origin whose pages may call this server (the Hub's, for its inference widget); repeatable",
    )
    serve.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS_CAP, help="Cap on max_tokens")
    serve.add_argument("--max-concurrency", type=int, default=DEFAULT_MAX_CONCURRENCY, help="Generations at once")
    serve.add_argument("--max-waiting", type=int, default=DEFAULT_MAX_WAITING, help="Requests queued; more get 429")
    serve.add_argument("--max-loaded", type=int, default=DEFAULT_MAX_LOADED, help="Models kept loaded")
    serve.add_argument("--backend", default="auto", help="Generation backend: auto, transformers or vllm")
    serve.add_argument("--log-level", default="warning")
    both = commands.add_parser("with-hub", help="Serve the embedded Hub and this server together (make hub)")
    both.add_argument("--root", default=None, help="The Hub's root (default: $DIALOGHUB_BASE_DIR/hub)")
    both.add_argument("--host", default="127.0.0.1")
    both.add_argument("--hub-port", type=int, default=8765)
    both.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    if args.command == "with-hub":
        sys.exit(serve_hub_with_inference(args.root or hub_root(), args.host, args.hub_port, args.port))
    configure_logging()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger(__name__).warning("Binding to %s: the server is reachable beyond this machine", args.host)
    app = create_app(
        max_new_tokens_cap=args.max_new_tokens,
        max_concurrency=args.max_concurrency,
        max_waiting=args.max_waiting,
        max_loaded=args.max_loaded,
        allow_origins=args.allow_origin,
        backend=args.backend,
    )
    print(f"dialoghub inference server on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
