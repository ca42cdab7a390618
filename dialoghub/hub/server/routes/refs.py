"""Branches and tags: list them, create and delete them."""

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from dialoghub.hub.server.dependencies import WRITE_ACCESS, ApiRepo, Body, ReadableApiRepo, Storage, json_body
from dialoghub.hub.server.validation import HubError, validate_ref_name

router = APIRouter()


class TagBody(Body):
    tag: str
    message: str | None = None


class BranchBody(Body):
    startingPoint: str | None = None  # noqa: N815 - the Hub's field name


@router.get("/api/{type_prefix}/{namespace}/{name}/refs")
def list_refs(storage: Storage, repo: ReadableApiRepo, include_prs: bool = False):
    refs = storage.refs(repo)
    return {**refs, "converts": [], "pullRequests": refs["pullRequests"] if include_prs else []}


@router.post("/api/{type_prefix}/{namespace}/{name}/tag/{revision:path}", dependencies=WRITE_ACCESS)
async def create_tag(
    storage: Storage, ref: ApiRepo, revision: str, body: Annotated[TagBody, Depends(json_body(TagBody))]
):
    tag = validate_ref_name(body.tag)
    await run_in_threadpool(storage.create_tag, ref.type, ref.id, tag, revision, body.message)
    return {}


@router.delete("/api/{type_prefix}/{namespace}/{name}/tag/{tag:path}", dependencies=WRITE_ACCESS)
async def delete_tag(storage: Storage, ref: ApiRepo, tag: str):
    await run_in_threadpool(storage.delete_ref, ref.type, ref.id, f"refs/tags/{validate_ref_name(tag)}", "Tag")
    return {}


@router.post("/api/{type_prefix}/{namespace}/{name}/branch/{branch:path}", dependencies=WRITE_ACCESS)
async def create_branch(
    storage: Storage, ref: ApiRepo, branch: str, body: Annotated[BranchBody, Depends(json_body(BranchBody))]
):
    await run_in_threadpool(storage.create_branch, ref.type, ref.id, validate_ref_name(branch), body.startingPoint)
    return {}


@router.delete("/api/{type_prefix}/{namespace}/{name}/branch/{branch:path}", dependencies=WRITE_ACCESS)
async def delete_branch(storage: Storage, ref: ApiRepo, branch: str):
    if branch == "main":
        raise HubError(403, None, "The main branch cannot be deleted")
    await run_in_threadpool(storage.delete_ref, ref.type, ref.id, f"refs/heads/{validate_ref_name(branch)}", "Branch")
    return {}
