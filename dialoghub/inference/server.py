"""An inference server speaking the chat-completions API (`POST /v1/chat/completions`, `GET /v1/models`), as TGI,
vLLM and the OpenAI API do, so `huggingface_hub.InferenceClient(base_url=...)` and OpenAI clients call the project's
adapters and models unchanged.

`model` is a Hub repo id, optionally `ID@REVISION`; `revision` in the body (the `extra_body` of the clients) pins it
too. An adapter repo (one with `adapter_config.json`) is loaded on the base model its config names; any other repo
is loaded as a model. Loading and generation are `dialoghub.models.generation`'s, the same as every stage's.

Limits: `max_tokens` up to `max_new_tokens_cap`; at most `max_concurrency` generations run at once and
`max_waiting` more wait, beyond that a request gets 429; at most `max_loaded` models stay loaded (least recently used
first out). Errors are TGI's `{"error": message, "error_type": kind}` with a 4xx status for anything the request
got wrong (unknown model or revision, malformed body, too many tokens), which `InferenceClient` turns into typed
exceptions.

Streaming (`stream: true`) sends server-sent events of `chat.completion.chunk` objects and a final `data: [DONE]`.
The generation backend returns whole completions, so the chunks (one per token) follow the finished answer.
"""

from __future__ import annotations

import dialoghub.core.hubenv  # noqa: F401 - first: the HF libraries read HF_ENDPOINT when imported

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from huggingface_hub import HfApi
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from dialoghub.hub.client import RepoReferenceError, UnknownRepoError, UnknownRevisionError, resolve_repo
from dialoghub.models.generation import STOP_EOS, GenerationSettings, Generator, load_generator

logger = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = 256
DEFAULT_MAX_NEW_TOKENS_CAP = 1024
DEFAULT_MAX_CONCURRENCY = 1
DEFAULT_MAX_WAITING = 8
DEFAULT_MAX_LOADED = 2
MAX_MESSAGES = 256
MAX_MESSAGE_CHARACTERS = 100_000
# A Hub repo id (`org/name`), never a local path: a client must not make the server read its file system.
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
ADAPTER_CONFIG = "adapter_config.json"


class RequestError(Exception):
    def __init__(self, status: int, message: str, kind: str = "validation"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def error_response(error: RequestError) -> JSONResponse:
    return JSONResponse({"error": error.message, "error_type": error.kind}, status_code=error.status)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_MESSAGE_CHARACTERS)] | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class ChatRequest(BaseModel):
    """The chat-completions body. Fields the clients may send and that change nothing here are accepted; those that
    would change the answer in a way this server cannot honour (tools, n > 1, logprobs) are refused."""

    model_config = ConfigDict(extra="ignore")
    model: str = ""
    messages: Annotated[list[Message], Field(min_length=1, max_length=MAX_MESSAGES)]
    revision: str | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=100)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: Annotated[int, Field(ge=1, le=1)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logprobs: Literal[False] | None = None
    tools: None = None
    tool_choice: None = None
    response_format: None = None


@dataclass(frozen=True)
class ModelKey:
    repo_id: str
    sha: str


class ModelCache:
    """Loaded generators by repo and commit, at most `capacity`, least recently used out first."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._loaded: OrderedDict[ModelKey, Generator] = OrderedDict()
        self._guard = threading.Lock()
        self._loading: dict[ModelKey, threading.Lock] = {}

    def names(self) -> list[ModelKey]:
        with self._guard:
            return list(self._loaded)

    def get(self, key: ModelKey, load) -> Generator:
        with self._guard:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            lock = self._loading.setdefault(key, threading.Lock())
        with lock:  # one load per model, however many requests ask for it at once
            with self._guard:
                if key in self._loaded:
                    return self._loaded[key]
            generator = load()
            with self._guard:
                self._loaded[key] = generator
                while len(self._loaded) > self.capacity:
                    self._loaded.popitem(last=False)
                self._loading.pop(key, None)
            return generator


def resolve_model(model: str, revision: str | None) -> tuple[ModelKey, bool]:
    """The repo and commit a request names, and whether it is an adapter; unknown ones are a 404."""
    repo_id, _, inline_revision = model.partition("@")
    if not REPO_ID.match(repo_id):
        raise RequestError(400, f"Invalid model {model!r}: expected a Hub repo id ORG/NAME, or ORG/NAME@REVISION")
    if inline_revision and revision and inline_revision != revision:
        raise RequestError(400, f"{model!r} names revision {inline_revision!r} but revision={revision!r} was given")
    try:
        resolved = resolve_repo(repo_id, inline_revision or revision)
        info = HfApi().model_info(repo_id, revision=resolved.sha)
    except (UnknownRepoError, UnknownRevisionError) as error:
        raise RequestError(404, f"Model {model!r} not found: {error}", "not_found") from error
    except RepoReferenceError as error:
        raise RequestError(400, str(error)) from error
    is_adapter = any(sibling.rfilename == ADAPTER_CONFIG for sibling in info.siblings or [])
    return ModelKey(repo_id, resolved.sha), is_adapter


def generation_settings(body: ChatRequest, max_new_tokens_cap: int) -> GenerationSettings:
    requested = body.max_completion_tokens or body.max_tokens
    if requested is not None and requested > max_new_tokens_cap:
        raise RequestError(400, f"max_tokens={requested} is over this server's limit of {max_new_tokens_cap}")
    sampling = body.temperature not in (None, 0) or body.top_p not in (None, 1)
    return GenerationSettings(
        max_new_tokens=requested or min(DEFAULT_MAX_NEW_TOKENS, max_new_tokens_cap),
        do_sample=sampling,
        temperature=body.temperature if body.temperature else 1.0,
        top_p=body.top_p or 1.0,
        seed=body.seed or 0,
        batch_size=1,
    )


def cut_at_stop(text: str, stop: str | list[str] | None) -> tuple[str, bool]:
    for sequence in [stop] if isinstance(stop, str) else stop or []:
        if sequence and sequence in text:
            text = text[: text.index(sequence)]
            return text, True
    return text, False


def create_app(
    max_new_tokens_cap: int = DEFAULT_MAX_NEW_TOKENS_CAP,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    max_waiting: int = DEFAULT_MAX_WAITING,
    max_loaded: int = DEFAULT_MAX_LOADED,
    allow_origins: list[str] | tuple[str, ...] = (),
    backend: str = "auto",
) -> FastAPI:
    app = FastAPI(title="dialoghub inference server", docs_url=None, redoc_url=None, openapi_url=None)
    if allow_origins:  # the Hub's model pages call this server from the browser
        app.add_middleware(
            CORSMiddleware, allow_origins=list(allow_origins), allow_methods=["GET", "POST"], allow_headers=["*"]
        )
    cache = ModelCache(max_loaded)
    running = asyncio.Semaphore(max_concurrency)
    admitted = {"count": 0}
    admission_limit = max_concurrency + max_waiting

    @app.exception_handler(RequestError)
    async def request_error_handler(_request: Request, error: RequestError):
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error_handler(_request: Request, error: RequestValidationError):
        return error_response(RequestError(400, f"Invalid request: {describe(error.errors())}"))

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    def list_models():
        return {
            "object": "list",
            "data": [
                {
                    "id": key.repo_id,
                    "object": "model",
                    "created": 0,
                    "owned_by": key.repo_id.split("/")[0],
                    "revision": key.sha,
                }  # fmt: skip
                for key in cache.names()
            ],
        }

    def load(key: ModelKey, is_adapter: bool) -> Generator:
        try:
            if is_adapter:
                return load_generator(None, key.repo_id, adapter_revision=key.sha, backend=backend)
            return load_generator(key.repo_id, model_revision=key.sha, backend=backend)
        except (OSError, ValueError, KeyError) as error:  # the repo exists but holds no model these libraries load
            message = f"{key.repo_id}@{key.sha[:12]} is not a model or adapter this server can load: {error}"
            raise RequestError(400, message.splitlines()[0]) from error

    def complete(body: ChatRequest, settings: GenerationSettings):
        key, is_adapter = resolve_model(body.model, body.revision)
        generator = cache.get(key, lambda: load(key, is_adapter))
        messages = [{"role": message.role, "content": message.text()} for message in body.messages]
        try:
            [completion] = generator.generate([messages], settings, progress=False)
        except ValueError as error:  # the prompt plus max_tokens do not fit the model
            raise RequestError(400, str(error)) from error
        text, stopped = cut_at_stop(completion.text, body.stop)
        finish = "stop" if stopped or completion.stop_reason == STOP_EOS else "length"
        return key, generator, completion, text, finish

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        try:
            body = ChatRequest.model_validate_json(await request.body())
        except ValidationError as error:
            raise RequestError(400, f"Invalid request body: {describe(error.errors())}") from error
        if not body.model:
            raise RequestError(400, "`model` is required: the Hub repo id of the model or adapter to run")
        settings = generation_settings(body, max_new_tokens_cap)
        if admitted["count"] >= admission_limit:
            raise RequestError(429, f"Too many requests: {admission_limit} already running or waiting", "overloaded")
        admitted["count"] += 1
        try:
            async with running:
                key, generator, completion, text, finish = await run_in_threadpool(complete, body, settings)
        finally:
            admitted["count"] -= 1
        created = int(time.time())
        identifier = f"chatcmpl-{uuid.uuid4().hex}"
        fingerprint = f"dialoghub-{key.sha[:12]}"
        usage = {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.new_tokens,
            "total_tokens": completion.prompt_tokens + completion.new_tokens,
        }
        common = {"id": identifier, "created": created, "model": key.repo_id, "system_fingerprint": fingerprint}
        if not body.stream:
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
                "logprobs": None,
            }
            return {**common, "object": "chat.completion", "choices": [choice], "usage": usage}

        def events() -> Iterator[str]:
            def chunk(delta: dict[str, Any], finish_reason: str | None, **extra) -> str:
                choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
                payload = {**common, "object": "chat.completion.chunk", "choices": [choice], **extra}
                return f"data: {json.dumps(payload)}\n\n"

            yield chunk({"role": "assistant", "content": ""}, None)
            for piece in token_pieces(generator, text):
                yield chunk({"role": "assistant", "content": piece}, None)
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            yield chunk({"role": "assistant", "content": ""}, finish, **({"usage": usage} if include_usage else {}))
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def token_pieces(generator: Generator, text: str) -> list[str]:
    """The text cut where its tokens are, each piece whole characters (a token can end mid-character); the text as
    one piece if decoding token by token does not give it back exactly."""
    ids = generator.tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces, emitted = [], ""
    for end in range(1, len(ids) + 1):
        decoded = generator.tokenizer.decode(ids[:end], skip_special_tokens=True)
        if decoded.endswith("\ufffd") or not decoded.startswith(emitted) or decoded == emitted:
            continue
        pieces.append(decoded[len(emitted) :])
        emitted = decoded
    return pieces if "".join(pieces) == text else [text] if text else []


def describe(errors: list[dict]) -> str:
    return "; ".join(f"{'.'.join(map(str, item['loc'])) or 'body'}: {item['msg']}" for item in errors[:5])
