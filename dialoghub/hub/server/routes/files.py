"""File reads: tree listings, paths-info, and `resolve` downloads (HEAD and GET, with `Range`)."""

import re
from email.utils import formatdate
from typing import Annotated
from urllib.parse import quote

from dulwich.repo import Repo
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from dialoghub.hub.server.dependencies import (
    Body,
    ReadableApiRepo,
    Settings,
    Storage,
    parse_json,
    readable_repo,
    revision_and_path,
    url_repo,
)
from dialoghub.hub.server.pagination import page_response
from dialoghub.hub.server.storage import Entry
from dialoghub.hub.server.validation import URL_PREFIX_TO_TYPE, HubError, validate_path

router = APIRouter()


class PathsInfoBody(Body):
    paths: list[str] = []


@router.get("/api/{type_prefix}/{namespace}/{name}/tree/{revision}")
@router.get("/api/{type_prefix}/{namespace}/{name}/tree/{revision}/{path:path}")
def list_tree(
    request: Request,
    settings: Settings,
    repo: ReadableApiRepo,
    type_prefix: str,
    namespace: str,
    name: str,
    revision: str,
    path: str = "",
    recursive: bool = False,
):
    storage = settings.storage
    revision, path = revision_and_path(request, storage, repo, revision, path)
    path = validate_path(path.strip("/")) if path.strip("/") else ""
    sha = storage.resolve(repo, revision)
    entries = storage.list_tree(repo, sha, path, recursive=recursive)
    # The next pages list the tree of the commit this page came from, even if the branch moves meanwhile.
    pinned = request.url.replace(path=f"/api/{type_prefix}/{namespace}/{name}/tree/{sha}/{quote(path)}".rstrip("/"))
    return page_response(request, entries, settings.page_size, Entry.to_json, pinned)


@router.post("/api/{type_prefix}/{namespace}/{name}/paths-info/{revision:path}")
async def paths_info(request: Request, storage: Storage, repo: ReadableApiRepo, revision: str):
    if request.headers.get("content-type", "").startswith("application/json"):
        paths = parse_json(PathsInfoBody, await request.body()).paths
    else:
        paths = (await request.form()).getlist("paths")
    paths = [validate_path(str(path).strip("/")) for path in paths]

    def lookup():
        sha = storage.resolve(repo, revision)
        return [entry.to_json() for path in paths if (entry := storage.entry(repo, sha, path))]

    return await run_in_threadpool(lookup)


def resolve_file(request: Request, storage: Storage, repo: Repo, revision: str, path: str) -> Response:
    revision, path = revision_and_path(request, storage, repo, revision, path)
    path = validate_path(path)
    sha = storage.resolve(repo, revision)
    entry = storage.entry(repo, sha, path)
    if entry is None or entry.type != "file":
        raise HubError(404, "EntryNotFound", f"{path} does not exist at {revision}")
    headers = {
        "X-Repo-Commit": sha,
        "ETag": f'"{entry.lfs_oid or entry.oid}"',
        "Accept-Ranges": "bytes",
        "Last-Modified": formatdate(storage.commit_info(repo, sha).commit_time, usegmt=True),
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}",
    }
    if entry.lfs_oid:
        headers["X-Linked-Etag"] = f'"{entry.lfs_oid}"'
        headers["X-Linked-Size"] = str(entry.size)
        return FileResponse(storage.lfs.path(entry.lfs_oid), headers=headers)
    return bytes_response(request, storage.read_blob(repo, entry.oid), headers)


def resolve_route(repo_type: str):
    def route(
        request: Request,
        storage: Storage,
        repo: Annotated[Repo, Depends(readable_repo(url_repo(repo_type)))],
        revision: str,
        path: str,
    ) -> Response:
        return resolve_file(request, storage, repo, revision, path)

    return route


# Model repos have no prefix in file URLs, so their route comes last: it would match `datasets/...` too.
for _prefix in ("datasets", "spaces"):
    router.add_api_route(
        f"/{_prefix}/{{namespace}}/{{name}}/resolve/{{revision}}/{{path:path}}",
        resolve_route(URL_PREFIX_TO_TYPE[_prefix]),
        methods=["GET", "HEAD"],
    )
router.add_api_route(
    "/{namespace}/{name}/resolve/{revision}/{path:path}", resolve_route("model"), methods=["GET", "HEAD"]
)


def bytes_response(request: Request, data: bytes, headers: dict[str, str]) -> Response:
    """A regular (non-LFS) file, honouring a single `Range: bytes=a-b` request as HfFileSystem sends it."""
    range_header = request.headers.get("range")
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip()) if range_header else None
    if not match or (not match.group(1) and not match.group(2)):
        return Response(
            data if request.method == "GET" else b"", headers={**headers, "Content-Length": str(len(data))}
        )
    if match.group(1):
        start = int(match.group(1))
        end = min(int(match.group(2)), len(data) - 1) if match.group(2) else len(data) - 1
    else:
        start, end = max(len(data) - int(match.group(2)), 0), len(data) - 1
    if start >= len(data) or start > end:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})
    body = data[start : end + 1]
    headers = {**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}", "Content-Length": str(len(body))}
    return Response(body if request.method == "GET" else b"", status_code=206, headers=headers)
