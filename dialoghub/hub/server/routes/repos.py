"""Repos: create, delete, list, and the repo info (`model_info`, `dataset_info`, `repo_info`)."""

import hashlib
from collections.abc import Iterator, Sequence
from typing import Annotated, get_args

from dulwich.repo import Repo
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from huggingface_hub.hf_api import ExpandDatasetProperty_T, ExpandModelProperty_T, ExpandSpaceProperty_T
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
    has_valid_token,
    iso_time,
    json_body,
    open_repo,
    type_from_prefix,
)
from dialoghub.hub.server.evaluations import BENCHMARK_TAG, eval_results_json, is_benchmark
from dialoghub.hub.server.pagination import page_response
from dialoghub.hub.server.storage import HEAD_BRANCH, HubStorage
from dialoghub.hub.server.validation import HubError, card_data, validate_repo_id, validate_repo_type

router = APIRouter()


class RepoBody(Body):
    name: str = ""
    organization: str | None = None
    type: str | None = None

    def ref(self) -> RepoRef:
        return RepoRef(validate_repo_type(self.type), validate_repo_id(self.organization or LOCAL_USER, self.name))


class CreateRepoBody(RepoBody):
    private: bool | None = None
    visibility: str | None = None


@router.post("/api/repos/create", dependencies=WRITE_ACCESS)
async def create_repo(
    request: Request, storage: Storage, body: Annotated[CreateRepoBody, Depends(json_body(CreateRepoBody))]
):
    ref = body.ref()
    url = ref.url(request)
    try:
        private = body.visibility in ("private", "protected") or bool(body.private)
        await run_in_threadpool(storage.create, ref.type, ref.id, private)
    except HubError as error:
        if error.status == 409:
            return JSONResponse({"error": error.message, "url": url}, status_code=409)
        raise
    return {"url": url, "name": ref.id}


@router.delete("/api/repos/delete", dependencies=WRITE_ACCESS)
async def delete_repo(storage: Storage, body: Annotated[RepoBody, Depends(json_body(RepoBody))]):
    ref = body.ref()
    await run_in_threadpool(storage.delete, ref.type, ref.id)
    return {}


# `list_models(sort=...)` as huggingface_hub 2.4 sends it; the Hub sorts descending.
LISTING_SORT_KEYS = ("lastModified", "createdAt", "downloads", "likes", "trendingScore")
# What a listing item leaves out of the repo info unless `full` (or `cardData`) asks for it.
FULL_ONLY_FIELDS = ("siblings", "cardData", "usedStorage")
# The `expand` values each client method may send (huggingface_hub's own lists); others are a 400, as on the Hub.
EXPANDABLE = {
    "model": set(get_args(ExpandModelProperty_T)),
    "dataset": set(get_args(ExpandDatasetProperty_T)),
    "space": set(get_args(ExpandSpaceProperty_T)),
}
ALWAYS_SENT = ("_id", "id")


def check_expand(repo_type: str, expand: Sequence[str]) -> None:
    unknown = sorted(set(expand) - EXPANDABLE[repo_type])
    if unknown:
        raise HubError(400, None, f"Invalid expand {unknown}; expected some of {sorted(EXPANDABLE[repo_type])}")


def expanded(storage: HubStorage, ref: RepoRef, repo: Repo, info: dict, expand: Sequence[str]) -> dict:
    """With `expand`, the Hub sends the id and the fields asked for, and only those (unknown here: left out)."""
    if not expand:
        return info
    fields = {key: info[key] for key in ALWAYS_SENT}
    for key in expand:
        if key == "evalResults":
            fields[key] = eval_results_json(storage, ref.id, repo)
        elif key in info:
            fields[key] = info[key]
    return fields


@router.get("/api/{type_prefix}")
def list_repos(
    request: Request,
    settings: Settings,
    type_prefix: str,
    author: str | None = None,
    search: Annotated[list[str], Query()] = (),
    filter: Annotated[list[str], Query()] = (),
    sort: str | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    full: bool = False,
    cardData: bool = False,
    expand: Annotated[list[str], Query()] = (),
):
    """`list_models`/`list_datasets`: every `filter` is a tag the repo must have; private repos only with the token."""
    repo_type = type_from_prefix(type_prefix)
    check_expand(repo_type, expand)
    if sort is not None and sort not in LISTING_SORT_KEYS:
        raise HubError(400, None, f"Invalid sort {sort!r}; expected one of {list(LISTING_SORT_KEYS)}")
    storage = settings.storage
    show_private = has_valid_token(request)
    hidden = [field for field in FULL_ONLY_FIELDS if not (full or (field == "cardData" and cardData))]

    def matching() -> Iterator[dict]:
        for repo_id in storage.list_repos(repo_type):
            namespace = repo_id.split("/")[0]
            if (author and namespace != author) or not all(term.lower() in repo_id.lower() for term in search):
                continue
            ref = RepoRef(repo_type, repo_id)
            with open_repo(storage, ref) as repo:
                if storage.is_private(repo) and not show_private:
                    continue
                info = repo_info_json(storage, ref, repo, HEAD_BRANCH)
                if set(filter) <= set(info["tags"]):
                    if expand:
                        yield expanded(storage, ref, repo, info, expand)
                    else:
                        yield {key: value for key, value in info.items() if key not in hidden}

    items = matching()
    if sort is not None:
        items = sorted(items, key=lambda item: item.get(sort) or 0, reverse=True)
    return page_response(request, items, min(limit or settings.page_size, settings.page_size))


@router.get("/api/{type_prefix}/{namespace}/{name}")
def repo_info(storage: Storage, ref: ApiRepo, repo: ReadableApiRepo, expand: Annotated[list[str], Query()] = ()):
    check_expand(ref.type, expand)
    return expanded(storage, ref, repo, repo_info_json(storage, ref, repo, "main"), expand)


@router.get("/api/{type_prefix}/{namespace}/{name}/revision/{revision:path}")
def repo_info_at_revision(
    storage: Storage, ref: ApiRepo, repo: ReadableApiRepo, revision: str, expand: Annotated[list[str], Query()] = ()
):
    check_expand(ref.type, expand)
    return expanded(storage, ref, repo, repo_info_json(storage, ref, repo, revision), expand)


def repo_info_json(storage: HubStorage, ref: RepoRef, repo: Repo, revision: str) -> dict:
    sha = storage.resolve(repo, revision)
    commit = storage.commit_info(repo, sha)
    files = storage.all_files(repo, sha)
    siblings = []
    for path in sorted(files):
        entry = storage.entry(repo, sha, path)
        sibling = {"rfilename": path, "blobId": entry.oid, "size": entry.size}
        if entry.lfs_oid:
            sibling["lfs"] = {"sha256": entry.lfs_oid, "size": entry.size, "pointerSize": entry.pointer_size}
        siblings.append(sibling)
    metadata = (
        card_data(storage.read_blob(repo, files["README.md"].decode()).decode("utf-8", "replace"))
        if ("README.md" in files)
        else None
    )
    info = {
        "_id": hashlib.sha1(f"{ref.type}/{ref.id}".encode()).hexdigest()[:24],
        "id": ref.id,
        "author": ref.id.split("/")[0],
        "sha": sha,
        "lastModified": iso_time(commit.commit_time),
        "createdAt": iso_time(storage.created_at(repo, sha)),
        "private": storage.is_private(repo),
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": card_tags(metadata) + ([BENCHMARK_TAG] if ref.type == "dataset" and is_benchmark(files) else []),
        "siblings": siblings,
        "cardData": metadata,
        "usedStorage": sum(sibling["size"] for sibling in siblings),
    }
    if ref.type == "model" and metadata:
        info["library_name"] = metadata.get("library_name")
        info["pipeline_tag"] = metadata.get("pipeline_tag")
    if ref.type == "space" and metadata:
        info["sdk"] = metadata.get("sdk")
    return info


def card_tags(metadata: dict | None) -> list[str]:
    if not metadata:
        return []
    tags = []
    for key, prefix in (
        ("tags", ""),
        ("library_name", ""),
        ("pipeline_tag", ""),
        ("license", "license:"),
        ("language", ""),
        ("task_categories", "task_categories:"),
        ("datasets", "dataset:"),
        ("base_model", "base_model:"),
    ):
        value = metadata.get(key)
        for item in [value] if isinstance(value, str) else value or []:
            tags.append(f"{prefix}{item}")
    return tags
