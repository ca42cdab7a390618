"""What every route of the embedded Hub shares: the storage, token checks, repo ids and open-repo contexts.

Routes take these as FastAPI dependencies (`Depends`), so each route says what it needs in its signature and no
route opens or closes a repo by hand.
"""

import base64
import hmac
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, TypeVar
from urllib.parse import unquote

from dulwich.repo import Repo
from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, ValidationError

from dialoghub.hub.server.pagination import DEFAULT_PAGE_SIZE
from dialoghub.hub.server.storage import HubStorage
from dialoghub.hub.server.validation import REPO_TYPES, URL_PREFIX_TO_TYPE, HubError, validate_repo_id

LOCAL_USER = "dialoghub"
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class HubSettings:
    """Per-app state, kept in `app.state.hub` by `create_app`."""

    storage: HubStorage
    token: str | None
    # LFS URLs carry a signature instead of the bearer token: the client PUTs to them without auth headers, as it
    # would to a presigned S3 URL.
    signing_key: bytes
    # Items per page of a listing: repos, commits, trees and LFS files.
    page_size: int = DEFAULT_PAGE_SIZE
    # The largest LFS object the batch API hands out an upload link for (the upload route enforces it too).
    max_lfs_bytes: int = 50 * 1024**3


def get_settings(request: Request) -> HubSettings:
    return request.app.state.hub


def get_storage(request: Request) -> HubStorage:
    return get_settings(request).storage


Settings = Annotated[HubSettings, Depends(get_settings)]
Storage = Annotated[HubStorage, Depends(get_storage)]


def has_valid_token(request: Request) -> bool:
    token = get_settings(request).token
    if token is None:
        return True
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    # The auth scheme is case-insensitive (RFC 9110); compare_digest wants ASCII, so compare bytes.
    if scheme.lower() == "basic":  # git and git-lfs send the token as the password of `http://user:TOKEN@host/...`
        try:
            credentials = base64.b64decode(credentials, validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())


def require_write(request: Request) -> None:
    if not has_valid_token(request):
        raise HubError(401, None, "Invalid credentials: this Hub requires `Authorization: Bearer <token>`")


WRITE_ACCESS = [Depends(require_write)]


@dataclass(frozen=True)
class RepoRef:
    type: str
    id: str

    def url(self, request: Request) -> str:
        prefix = "" if self.type == "model" else f"{REPO_TYPES[self.type]}/"
        return f"{base_url(request)}/{prefix}{self.id}"


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def type_from_prefix(type_prefix: str) -> str:
    if type_prefix not in URL_PREFIX_TO_TYPE:
        raise HubError(404, None, f"Unknown repo type {type_prefix!r}")
    return URL_PREFIX_TO_TYPE[type_prefix]


def api_repo(type_prefix: str, namespace: str, name: str) -> RepoRef:
    """The repo of an `/api/{models,datasets,spaces}/{namespace}/{name}/...` route."""
    return RepoRef(type_from_prefix(type_prefix), validate_repo_id(namespace, name))


def url_repo(repo_type: str) -> Callable[[str, str], RepoRef]:
    """The repo of a `/{datasets/}{namespace}/{name}...` route, whose prefix fixes the repo type."""

    def dependency(namespace: str, name: str) -> RepoRef:
        return RepoRef(repo_type, validate_repo_id(namespace, name))

    return dependency


ApiRepo = Annotated[RepoRef, Depends(api_repo)]


@contextmanager
def open_repo(storage: HubStorage, ref: RepoRef) -> Iterator[Repo]:
    repo = storage.open(ref.type, ref.id)
    try:
        yield repo
    finally:
        repo.close()


@contextmanager
def open_readable(request: Request, ref: RepoRef) -> Iterator[Repo]:
    """The repo, if the caller may read it: a private repo you can't read looks like a missing one, as on the Hub."""
    storage = get_storage(request)
    with open_repo(storage, ref) as repo:
        if storage.is_private(repo) and not has_valid_token(request):
            raise HubError(401, "RepoNotFound", f"Repository {ref.type}s/{ref.id} not found")
        yield repo


def readable_repo(ref_dependency: Callable[..., RepoRef] = api_repo) -> Callable[..., Iterator[Repo]]:
    """A dependency yielding the open repo of `ref_dependency`, closed when the request is done."""

    def dependency(request: Request, ref: Annotated[RepoRef, Depends(ref_dependency)]) -> Iterator[Repo]:
        with open_readable(request, ref) as repo:
            yield repo

    return dependency


ReadableApiRepo = Annotated[Repo, Depends(readable_repo(api_repo))]


class Body(BaseModel):
    """A JSON request body. Fields the Hub's clients send and this Hub ignores are allowed."""

    model_config = ConfigDict(extra="ignore")


def parse_json(model: type[ModelT], data: bytes) -> ModelT:
    """Validate JSON text against a model; any problem (syntax, types, nesting depth) is a 400."""
    try:
        return model.model_validate_json(data or b"{}")
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, item['loc'])) or 'body'}: {item['msg']}" for item in error.errors()[:5]
        )
        raise HubError(400, None, f"Invalid request body: {problems}") from error


def json_body(model: type[ModelT]) -> Callable[[Request], Awaitable[ModelT]]:
    """A dependency: the request body, validated against `model`."""

    async def dependency(request: Request) -> ModelT:
        return parse_json(model, await request.body())

    return dependency


def iso_time(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def revision_and_path(request: Request, storage: HubStorage, repo: Repo, revision: str, path: str) -> tuple[str, str]:
    """The revision and file path of a `.../{revision}/{path}` URL, for a revision that may hold '/'.

    The router splits the decoded URL at the first '/', so `feature%2Fx/a.txt` arrives as `feature` + `x/a.txt`. A
    client percent-encodes the revision (huggingface_hub does), which the raw path still shows; without that, the
    longest leading segments naming a ref are the revision, as on the Hub (`refs/pr/1/a.txt`).
    """
    tail = f"{revision}/{path}" if path else revision
    decoded_prefix = request.scope["path"].removesuffix(tail)
    raw_segments = request.scope["raw_path"].decode("latin-1").split("/")
    prefix_length = decoded_prefix.count("/")
    raw_revision = unquote(raw_segments[prefix_length]) if prefix_length < len(raw_segments) else ""
    if "/" in raw_revision and unquote("/".join(raw_segments[:prefix_length])) + "/" == decoded_prefix:
        return raw_revision, tail[len(raw_revision) + 1 :]
    return storage.split_revision(repo, tail)
