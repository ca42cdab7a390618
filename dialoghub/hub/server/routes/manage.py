"""Repo management: visibility settings, move, duplicate, super-squash, auth checks, and the repo's LFS files."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import StringConstraints
from starlette.concurrency import run_in_threadpool

from dialoghub.hub.server.dependencies import (
    LOCAL_USER,
    WRITE_ACCESS,
    ApiRepo,
    Body,
    ReadableApiRepo,
    RepoRef,
    Settings,
    Storage,
    iso_time,
    json_body,
)
from dialoghub.hub.server.pagination import page_response
from dialoghub.hub.server.validation import HubError, validate_repo_id, validate_repo_type

router = APIRouter()
REPO = "/api/{type_prefix}/{namespace}/{name}"
Visibility = Literal["public", "private", "protected"]
RepoId = Annotated[str, StringConstraints(pattern=r"^[^/]+/[^/]+$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def is_private(visibility: Visibility | None) -> bool | None:
    return None if visibility is None else visibility != "public"


def split_repo_id(repo_id: str) -> str:
    return validate_repo_id(*repo_id.split("/"))


class SettingsBody(Body):
    gated: Literal["auto", "manual", False] | None = None
    visibility: Visibility | None = None


class MoveBody(Body):
    fromRepo: RepoId
    toRepo: RepoId
    type: str | None = None


class DuplicateBody(Body):
    repository: RepoId
    visibility: Visibility | None = None


class SquashBody(Body):
    message: str | None = None


class LfsDeletions(Body):
    sha: list[Sha256]
    rewriteHistory: bool = True


class LfsDeletionBody(Body):
    deletions: LfsDeletions


@router.put(REPO + "/settings", dependencies=WRITE_ACCESS)
async def update_settings(
    storage: Storage, ref: ApiRepo, body: Annotated[SettingsBody, Depends(json_body(SettingsBody))]
):
    if body.gated not in (None, False):
        raise HubError(400, None, "Gated repos are not supported by the embedded Hub")
    if body.visibility is not None:
        await run_in_threadpool(storage.set_private, ref.type, ref.id, is_private(body.visibility))
    return {}


@router.post("/api/repos/move", dependencies=WRITE_ACCESS)
async def move_repo(storage: Storage, body: Annotated[MoveBody, Depends(json_body(MoveBody))]):
    repo_type = validate_repo_type(body.type)
    await run_in_threadpool(storage.move, repo_type, split_repo_id(body.fromRepo), split_repo_id(body.toRepo))
    return {}


@router.post(REPO + "/duplicate", dependencies=WRITE_ACCESS)
async def duplicate_repo(
    request: Request, storage: Storage, ref: ApiRepo, body: Annotated[DuplicateBody, Depends(json_body(DuplicateBody))]
):
    target = RepoRef(ref.type, split_repo_id(body.repository))
    try:
        await run_in_threadpool(storage.duplicate, ref.type, ref.id, target.id, is_private(body.visibility))
    except HubError as error:
        if error.status == 409:  # the client reads the url of the existing repo when `exist_ok`
            return JSONResponse({"error": error.message, "url": target.url(request)}, status_code=409)
        raise
    return {"url": target.url(request), "filesCopyPending": False}


@router.post(REPO + "/super-squash/{branch:path}", dependencies=WRITE_ACCESS)
async def super_squash(
    storage: Storage, ref: ApiRepo, branch: str, body: Annotated[SquashBody, Depends(json_body(SquashBody))]
):
    message = body.message or f"Super-squash branch '{branch}'"
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
async def delete_lfs_files(
    storage: Storage, ref: ApiRepo, body: Annotated[LfsDeletionBody, Depends(json_body(LfsDeletionBody))]
):
    deletions = body.deletions
    await run_in_threadpool(
        storage.permanently_delete_lfs_files, ref.type, ref.id, set(deletions.sha), deletions.rewriteHistory
    )
    return {}
