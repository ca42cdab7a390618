"""Commits: the history of a revision, preupload (which upload mode each file gets) and the NDJSON commit."""

import base64
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Base64Bytes, Field, NonNegativeInt, StringConstraints, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from dialoghub.hub.server.dependencies import (
    LOCAL_USER,
    WRITE_ACCESS,
    ApiRepo,
    Body,
    ReadableApiRepo,
    Settings,
    Storage,
    iso_time,
    json_body,
    open_repo,
)
from dialoghub.hub.server.discussions import Discussions
from dialoghub.hub.server.pagination import page_response
from dialoghub.hub.server.storage import CommitOperation, should_use_lfs
from dialoghub.hub.server.validation import HubError, validate_commit_target, validate_path, validate_readme_metadata

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


class PreuploadFile(Body):
    path: str
    size: NonNegativeInt = 0
    sample: Base64Bytes = b""  # the first 512 bytes


class PreuploadBody(Body):
    files: list[PreuploadFile]


@router.post("/api/{type_prefix}/{namespace}/{name}/preupload/{revision:path}", dependencies=WRITE_ACCESS)
def preupload(
    storage: Storage, ref: ApiRepo, revision: str, body: Annotated[PreuploadBody, Depends(json_body(PreuploadBody))]
):
    with open_repo(storage, ref) as repo:
        sha = storage.resolve(repo, revision)
        existing = storage.all_files(repo, sha)
        rules = storage.lfs_rules(repo, sha)

        def remote_oid(path: str) -> str | None:
            # What the client compares with its local oid: git's blob sha1 for regular files, but the content's
            # sha256 for LFS files (as the Hub does), so unchanged LFS files are skipped too.
            if path not in existing:
                return None
            entry = storage.entry(repo, sha, path)
            return entry.lfs_oid or entry.oid

        result = []
        for file in body.files:
            path = validate_path(file.path)
            lfs = should_use_lfs(rules, path, file.size, file.sample)
            result.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": remote_oid(path),
                }
            )
        return {"files": result, "commitOid": sha}


@router.post("/api/{type_prefix}/{namespace}/{name}/commit/{revision:path}", dependencies=WRITE_ACCESS)
async def commit(request: Request, storage: Storage, ref: ApiRepo, revision: str):
    header, operations = parse_commit_payload(await request.body())
    for operation in operations:
        if operation.path == "README.md" and operation.content is not None:
            errors = validate_readme_metadata(operation.content.decode("utf-8", "replace"), ref.type)
            if errors:
                raise HubError(400, None, "Invalid metadata in README.md: " + "; ".join(errors))
    target = validate_commit_target(revision)
    commit_arguments = (ref.type, ref.id, target, operations, header.summary or "Upload files", header.description)
    pull_request_url = None
    if request.query_params.get("create_pr") in ("1", "true"):
        pull_request = Discussions(storage).commit_as_pull_request
        num, sha = await run_in_threadpool(pull_request, *commit_arguments, header.parentCommit, LOCAL_USER)
        pull_request_url = f"{ref.url(request)}/discussions/{num}"
    else:
        sha, _ = await run_in_threadpool(storage.commit, *commit_arguments, header.parentCommit)
    commit_url = f"{ref.url(request)}/commit/{sha}"
    return {"commitOid": sha, "commitUrl": commit_url, "pullRequestUrl": pull_request_url, "success": True}


# ----- the NDJSON commit payload: a header line, then one line per file operation ----------------------------------
class CommitHeader(Body):
    summary: str = ""
    description: str = ""
    parentCommit: str | None = None  # noqa: N815 - the Hub's field name


class FileValue(Body):
    path: str
    content: str = ""
    encoding: Literal["base64"] = "base64"


class LfsFileValue(Body):
    path: str
    algo: Literal["sha256"] = "sha256"
    oid: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    # A copy (`CommitOperationCopy`) sends no size: the storage takes it from the file it copies.
    size: NonNegativeInt | None = None


class PathValue(Body):
    path: str


class HeaderLine(Body):
    key: Literal["header"]
    value: CommitHeader


class FileLine(Body):
    key: Literal["file"]
    value: FileValue


class LfsFileLine(Body):
    key: Literal["lfsFile"]
    value: LfsFileValue


class DeletedFileLine(Body):
    key: Literal["deletedFile"]
    value: PathValue


class DeletedFolderLine(Body):
    key: Literal["deletedFolder"]
    value: PathValue


CommitLine = TypeAdapter(
    Annotated[HeaderLine | FileLine | LfsFileLine | DeletedFileLine | DeletedFolderLine, Field(discriminator="key")]
)


def parse_commit_payload(body: bytes) -> tuple[CommitHeader, list[CommitOperation]]:
    header = None
    operations = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = CommitLine.validate_json(line)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(map(str, problem["loc"]))
            raise HubError(400, None, f"Commit payload line {number}: {where}: {problem['msg']}") from error
        if isinstance(item, HeaderLine):
            header = item.value
            continue
        path = item.value.path.strip("/") if isinstance(item, DeletedFolderLine) else item.value.path
        path = validate_path(path)
        if isinstance(item, FileLine):
            try:
                content = base64.b64decode(item.value.content, validate=True)
            except ValueError as error:
                raise HubError(400, None, f"Invalid base64 content for {path}") from error
            operations.append(CommitOperation("file", path, content=content))
        elif isinstance(item, LfsFileLine):
            operations.append(CommitOperation("lfsFile", path, lfs_oid=item.value.oid, size=item.value.size))
        else:
            operations.append(CommitOperation(item.key, path))
    if header is None:
        raise HubError(400, None, "The commit payload has no header line")
    return header, operations
