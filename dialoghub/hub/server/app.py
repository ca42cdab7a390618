"""The embedded Hub: the Hugging Face Hub HTTP API (as listed in shared/HUB_API.md) over git repos.

The unmodified `huggingface_hub`, `datasets`, `transformers` and `peft` clients talk to it through `HF_ENDPOINT`.
Run it with `python -m dialoghub.hub serve --root DIR`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect

from dialoghub.hub.server import pages
from dialoghub.hub.server.dependencies import HubSettings
from dialoghub.hub.server.pagination import DEFAULT_PAGE_SIZE
from dialoghub.hub.server.routes import ROUTERS
from dialoghub.hub.server.storage import HubStorage
from dialoghub.hub.server.validation import HubError

DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_LFS_BYTES = 50 * 1024**3
DEFAULT_MAX_HEADERS = 100
DEFAULT_MAX_HEADER_BYTES = 64 * 1024


def _error_response(error: HubError) -> JSONResponse:
    return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers())


class HeaderLimits:
    """Refuse requests with too many or too large headers (431), however the bytes arrived on the socket.

    h11's own cap (`h11_max_incomplete_event_size`) only applies to a request still arriving in pieces, so the
    parsed headers are counted here too.
    """

    def __init__(self, app, max_headers: int, max_header_bytes: int):
        self.app = app
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = scope["headers"]
            if len(headers) > self.max_headers:
                message = f"More than {self.max_headers} request headers"
                return await _error_response(HubError(431, None, message))(scope, receive, send)
            if sum(len(name) + len(value) for name, value in headers) > self.max_header_bytes:
                message = f"Request headers over {self.max_header_bytes} bytes"
                return await _error_response(HubError(431, None, message))(scope, receive, send)
        return await self.app(scope, receive, send)


class BodyTooLarge(HubError):
    def __init__(self, limit: int):
        super().__init__(413, None, f"Request body over the limit of {limit} bytes")


class BodySizeLimit:
    """Refuse request bodies over the cap, declared or streamed; LFS uploads have their own, larger cap."""

    def __init__(self, app, max_body_bytes: int, max_lfs_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_lfs_bytes = max_lfs_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_lfs_bytes if scope["path"].startswith("/lfs-upload/") else self.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await _error_response(BodyTooLarge(limit))(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        return await self.app(scope, limited_receive, send)


def create_app(
    root: str | Path,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_lfs_bytes: int = DEFAULT_MAX_LFS_BYTES,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_headers: int = DEFAULT_MAX_HEADERS,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    inference_url: str | None = None,
) -> FastAPI:
    """The Hub: its HTTP API, then its web pages. `inference_url` is the chat-completions server the model pages'
    inference widget calls (default: `$DIALOGHUB_INFERENCE_URL`; none: the widget says so)."""
    app = FastAPI(title="dialoghub embedded Hub", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodySizeLimit, max_body_bytes=max_body_bytes, max_lfs_bytes=max_lfs_bytes)
    app.add_middleware(HeaderLimits, max_headers=max_headers, max_header_bytes=max_header_bytes)
    app.state.hub = HubSettings(
        storage=HubStorage(root),
        token=token,
        signing_key=(token or secrets.token_hex(16)).encode(),
        page_size=page_size,
        max_lfs_bytes=max_lfs_bytes,
    )

    @app.exception_handler(HubError)
    async def hub_error_handler(_request: Request, error: HubError):
        return _error_response(error)

    @app.exception_handler(ClientDisconnect)
    async def client_disconnect_handler(_request: Request, _error: ClientDisconnect):
        # The client left (or its stalled body timed out) before its request was read: nobody to answer, nothing to
        # log. uvicorn drops what is sent on a closed connection.
        return Response(status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error_handler(_request: Request, error: RequestValidationError):
        # A malformed path or query parameter is a bad request, answered like every other one.
        problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()[:5])
        return _error_response(HubError(400, None, f"Invalid request: {problems}"))

    for router in ROUTERS:
        app.include_router(router)
    # The pages come after the API, whose routes they must never shadow.
    app.state.inference_url = inference_url or os.environ.get("DIALOGHUB_INFERENCE_URL")
    app.mount("/-/static", StaticFiles(directory=pages.HERE / "static"), name="static")
    app.include_router(pages.router)
    return app


__all__ = ["create_app"]
