"""Commits: the history of a revision, preupload (which upload mode each file gets) and the NDJSON commit."""

import base64
import json
import re

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from dialoghub.hub.dependencies import (
    LOCAL_USER,
    WRITE_ACCESS,
    ApiRepo,
    ReadableApiRepo,
    Settings,
    Storage,
    iso_time,
    json_body,
    open_repo,
)
from dialoghub.hub.discussions import Discussions
from dialoghub.hub.pagination import page_response
from dialoghub.hub.storage import CommitOperation, should_use_lfs
from dialoghub.hub.validation import HubError, validate_path, validate_readme_metadata, validate_ref_name

router = APIRouter()


@router.get("/api/{type_prefix}/{namespace}/{name}/commits/{revision:path}")
def list_commits(
    request: Request,
    settings: Settings,
    repo: ReadableApiRepo,
    type_prefix: str,
    namespace: str,
    name: str,
    revision: str,
):
    sha = settings.storage.resolve(repo, revision)

    def commit_json(commit) -> dict:
        message = commit.message.decode("utf-8", "replace")
        title, _, body = message.partition("\n")
        return {
            "id": commit.id.decode(),
            "title": title,
            "message": body.strip(),
            "date": iso_time(commit.commit_time),
            "authors": [{"user": commit.author.decode().split(" <")[0], "avatar": None}],
        }

    # The next pages list the history of the commit this page started from, even if the branch moves meanwhile.
    pinned = request.url.replace(path=f"/api/{type_prefix}/{namespace}/{name}/commits/{sha}")
    return page_response(request, settings.storage.log(repo, sha), settings.page_size, commit_json, pinned)


@router.post("/api/{type_prefix}/{namespace}/{name}/preupload/{revision:path}", dependencies=WRITE_ACCESS)
async def preupload(request: Request, storage: Storage, ref: ApiRepo, revision: str):
    files = (await json_body(request)).get("files")
    if not isinstance(files, list):
        raise HubError(400, None, '"files" must be a list')

    def modes():
        with open_repo(storage, ref) as repo:
            sha = storage.resolve(repo, revision)
            existing = storage.all_files(repo, sha)

            def remote_oid(path: str) -> str | None:
                # What the client compares with its local oid: git's blob sha1 for regular files, but the content's
                # sha256 for LFS files (as the Hub does), so unchanged LFS files are skipped too.
                if path not in existing:
                    return None
                entry = storage.entry(repo, sha, path)
                return entry.lfs_oid or entry.oid

            result = []
            for file in files:
                path = validate_path(str(file.get("path", "")))
                sample = base64.b64decode(file.get("sample") or "")
                lfs = should_use_lfs(path, int(file.get("size") or 0), sample)
                result.append(
                    {
                        "path": path,
                        "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": False,
                        "oid": remote_oid(path),
                    }
                )
            return {"files": result, "commitOid": sha}

    return await run_in_threadpool(modes)


@router.post("/api/{type_prefix}/{namespace}/{name}/commit/{revision:path}", dependencies=WRITE_ACCESS)
async def commit(request: Request, storage: Storage, ref: ApiRepo, revision: str):
    header, operations = parse_commit_payload(await request.body())
    for operation in operations:
        if operation.path == "README.md" and operation.content is not None:
            errors = validate_readme_metadata(operation.content.decode("utf-8", "replace"), ref.type)
            if errors:
                raise HubError(400, None, "Invalid metadata in README.md: " + "; ".join(errors))
    summary, description = str(header.get("summary") or "Upload files"), str(header.get("description") or "")
    pull_request_url = None
    if request.query_params.get("create_pr") in ("1", "true"):
        num, sha = await run_in_threadpool(
            Discussions(storage).commit_as_pull_request,
            ref.type,
            ref.id,
            validate_ref_name(revision),
            operations,
            summary,
            description,
            header.get("parentCommit"),
            LOCAL_USER,
        )
        pull_request_url = f"{ref.url(request)}/discussions/{num}"
    else:
        sha, _ = await run_in_threadpool(
            storage.commit,
            ref.type,
            ref.id,
            validate_ref_name(revision),
            operations,
            summary,
            description,
            header.get("parentCommit"),
        )
    commit_url = f"{ref.url(request)}/commit/{sha}"
    return {"commitOid": sha, "commitUrl": commit_url, "pullRequestUrl": pull_request_url, "success": True}


def parse_commit_payload(body: bytes) -> tuple[dict, list[CommitOperation]]:
    """The NDJSON commit payload: a header line, then one line per file operation."""
    header = None
    operations = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            key, value = item["key"], item["value"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
            raise HubError(400, None, f"Commit payload line {number} is not a {{key, value}} JSON object") from error
        if key == "header":
            header = value
            continue
        path = validate_path(
            str(value.get("path", "")).strip("/") if key == "deletedFolder" else value.get("path", "")
        )
        if key == "file":
            if value.get("encoding", "base64") != "base64":
                raise HubError(400, None, f"Unsupported encoding for {path}")
            try:
                content = base64.b64decode(value.get("content") or "", validate=True)
            except ValueError as error:
                raise HubError(400, None, f"Invalid base64 content for {path}") from error
            operations.append(CommitOperation("file", path, content=content))
        elif key == "lfsFile":
            oid, size = str(value.get("oid", "")), value.get("size")
            if value.get("algo", "sha256") != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", oid):
                raise HubError(400, None, f"Invalid LFS oid for {path}")
            # A copy (`CommitOperationCopy`) sends no size: the storage takes it from the file it copies.
            if size is not None and (not isinstance(size, int) or size < 0):
                raise HubError(400, None, f"Invalid LFS size for {path}")
            operations.append(CommitOperation("lfsFile", path, lfs_oid=oid, size=size))
        elif key in ("deletedFile", "deletedFolder"):
            operations.append(CommitOperation(key, path))
        else:
            raise HubError(400, None, f"Unsupported commit operation {key!r} on line {number}")
    if not isinstance(header, dict):
        raise HubError(400, None, "The commit payload has no header line")
    return header, operations
