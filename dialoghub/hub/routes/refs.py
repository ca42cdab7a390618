"""Branches and tags: list them, create and delete them."""

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from dialoghub.hub.dependencies import WRITE_ACCESS, ApiRepo, ReadableApiRepo, Storage, json_body
from dialoghub.hub.validation import HubError, validate_ref_name

router = APIRouter()


@router.get("/api/{type_prefix}/{namespace}/{name}/refs")
def list_refs(storage: Storage, repo: ReadableApiRepo, include_prs: bool = False):
    refs = storage.refs(repo)
    return {**refs, "converts": [], "pullRequests": refs["pullRequests"] if include_prs else []}


@router.post("/api/{type_prefix}/{namespace}/{name}/tag/{revision:path}", dependencies=WRITE_ACCESS)
async def create_tag(request: Request, storage: Storage, ref: ApiRepo, revision: str):
    data = await json_body(request)
    tag = validate_ref_name(str(data.get("tag") or ""))
    await run_in_threadpool(storage.create_tag, ref.type, ref.id, tag, revision, data.get("message"))
    return {}


@router.delete("/api/{type_prefix}/{namespace}/{name}/tag/{tag:path}", dependencies=WRITE_ACCESS)
async def delete_tag(storage: Storage, ref: ApiRepo, tag: str):
    await run_in_threadpool(storage.delete_ref, ref.type, ref.id, f"refs/tags/{validate_ref_name(tag)}", "Tag")
    return {}


@router.post("/api/{type_prefix}/{namespace}/{name}/branch/{branch:path}", dependencies=WRITE_ACCESS)
async def create_branch(request: Request, storage: Storage, ref: ApiRepo, branch: str):
    body = await json_body(request)
    await run_in_threadpool(
        storage.create_branch, ref.type, ref.id, validate_ref_name(branch), body.get("startingPoint")
    )
    return {}


@router.delete("/api/{type_prefix}/{namespace}/{name}/branch/{branch:path}", dependencies=WRITE_ACCESS)
async def delete_branch(storage: Storage, ref: ApiRepo, branch: str):
    if branch == "main":
        raise HubError(403, None, "The main branch cannot be deleted")
    await run_in_threadpool(storage.delete_ref, ref.type, ref.id, f"refs/heads/{validate_ref_name(branch)}", "Branch")
    return {}
