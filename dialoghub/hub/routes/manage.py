"""Repo management: visibility settings, move, duplicate, super-squash, auth checks, and the repo's LFS files."""

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dialoghub.hub.dependencies import (
    LOCAL_USER,
    WRITE_ACCESS,
    ApiRepo,
    ReadableApiRepo,
    RepoRef,
    Settings,
    Storage,
    iso_time,
    json_body,
)
from dialoghub.hub.pagination import page_response
from dialoghub.hub.validation import HubError, validate_repo_id, validate_repo_type

router = APIRouter()
REPO = "/api/{type_prefix}/{namespace}/{name}"
VISIBILITIES = {"public": False, "private": True, "protected": True}


def visibility_field(data: dict) -> bool | None:
    """Whether a `visibility` field asks for a private repo (None: not given)."""
    visibility = data.get("visibility")
    if visibility is None:
        return None
    if visibility not in VISIBILITIES:
        raise HubError(400, None, f"Invalid visibility {visibility!r}; expected one of {sorted(VISIBILITIES)}")
    return VISIBILITIES[visibility]


def repo_id_field(data: dict, field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or value.count("/") != 1:
        raise HubError(400, None, f'"{field}" must be a repo id "namespace/name"')
    return validate_repo_id(*value.split("/"))


@router.put(REPO + "/settings", dependencies=WRITE_ACCESS)
async def update_settings(request: Request, storage: Storage, ref: ApiRepo):
    data = await json_body(request)
    if data.get("gated") not in (None, False):
        raise HubError(400, None, "Gated repos are not supported by the embedded Hub")
    private = visibility_field(data)
    if private is not None:
        await run_in_threadpool(storage.set_private, ref.type, ref.id, private)
    return {}


@router.post("/api/repos/move", dependencies=WRITE_ACCESS)
async def move_repo(request: Request, storage: Storage):
    data = await json_body(request)
    repo_type = validate_repo_type(data.get("type"))
    await run_in_threadpool(storage.move, repo_type, repo_id_field(data, "fromRepo"), repo_id_field(data, "toRepo"))
    return {}


@router.post(REPO + "/duplicate", dependencies=WRITE_ACCESS)
async def duplicate_repo(request: Request, storage: Storage, ref: ApiRepo):
    data = await json_body(request)
    target = RepoRef(ref.type, repo_id_field(data, "repository"))
    try:
        await run_in_threadpool(storage.duplicate, ref.type, ref.id, target.id, visibility_field(data))
    except HubError as error:
        if error.status == 409:  # the client reads the url of the existing repo when `exist_ok`
            return JSONResponse({"error": error.message, "url": target.url(request)}, status_code=409)
        raise
    return {"url": target.url(request), "filesCopyPending": False}


@router.post(REPO + "/super-squash/{branch:path}", dependencies=WRITE_ACCESS)
async def super_squash(request: Request, storage: Storage, ref: ApiRepo, branch: str):
    message = (await json_body(request)).get("message") or f"Super-squash branch '{branch}'"
    if not isinstance(message, str):
        raise HubError(400, None, '"message" must be a string')
    commit = await run_in_threadpool(storage.super_squash, ref.type, ref.id, branch, message)
    return {"commitId": commit}


@router.get(REPO + "/auth-check")
def auth_check(repo: ReadableApiRepo):
    return {"user": LOCAL_USER, "access": "read"}


@router.get(REPO + "/auth-check/write", dependencies=WRITE_ACCESS)
def auth_check_write(repo: ReadableApiRepo):
    return {"user": LOCAL_USER, "access": "write"}


@router.get(REPO + "/lfs-files", dependencies=WRITE_ACCESS)
def list_lfs_files(request: Request, settings: Settings, repo: ReadableApiRepo):
    files = settings.storage.lfs_files(repo)
    return page_response(
        request, files, settings.page_size, lambda item: {**item, "pushedAt": iso_time(item["pushedAt"])}
    )


@router.post(REPO + "/lfs-files/batch", dependencies=WRITE_ACCESS)
async def delete_lfs_files(request: Request, storage: Storage, ref: ApiRepo):
    deletions = (await json_body(request)).get("deletions")
    shas = deletions.get("sha") if isinstance(deletions, dict) else None
    if not isinstance(shas, list) or not all(
        isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha) for sha in shas
    ):
        raise HubError(400, None, '"deletions.sha" must be a list of sha256 oids')
    rewrite_history = deletions.get("rewriteHistory", True) is not False
    await run_in_threadpool(storage.permanently_delete_lfs_files, ref.type, ref.id, set(shas), rewrite_history)
    return {}
