"""The embedded Hub: the Hugging Face Hub HTTP API (as listed in shared/HUB_API.md) over git repos.

The unmodified `huggingface_hub`, `datasets`, `transformers` and `peft` clients talk to it through `HF_ENDPOINT`.
Run it with `python -m dialoghub.hub serve --root DIR`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from dialoghub.hub.storage import CommitOperation, Entry, HubStorage, git_blob_sha, should_use_lfs
from dialoghub.hub.validation import (
    REPO_TYPES,
    URL_PREFIX_TO_TYPE,
    HubError,
    card_data,
    validate_path,
    validate_readme_metadata,
    validate_ref_name,
    validate_repo_id,
    validate_repo_type,
)

DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_LFS_BYTES = 50 * 1024**3
LOCAL_USER = "dialoghub"
COPY_CHUNK = 1 << 20


def _error_response(error: HubError) -> JSONResponse:
    headers = {"X-Error-Code": error.code, "X-Error-Message": error.message[:200]} if error.code else {}
    return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)


class BodyTooLarge(HubError):
    def __init__(self, limit: int):
        super().__init__(413, None, f"Request body over the limit of {limit} bytes")


class BodySizeLimit:
    """Refuse request bodies over the cap, declared or streamed; LFS uploads have their own, larger cap."""

    def __init__(self, app, max_body_bytes: int, max_lfs_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_lfs_bytes = max_lfs_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_lfs_bytes if scope["path"].startswith("/lfs-upload/") else self.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await _error_response(BodyTooLarge(limit))(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        return await self.app(scope, limited_receive, send)


def create_app(
    root: str | Path,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_lfs_bytes: int = DEFAULT_MAX_LFS_BYTES,
) -> FastAPI:
    storage = HubStorage(root)
    # LFS upload URLs carry a signature instead of the bearer token: the client PUTs to them without auth headers,
    # as it would to a presigned S3 URL.
    signing_key = (token or secrets.token_hex(16)).encode()
    app = FastAPI(title="dialoghub embedded Hub", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodySizeLimit, max_body_bytes=max_body_bytes, max_lfs_bytes=max_lfs_bytes)
    app.state.storage = storage

    @app.exception_handler(HubError)
    async def hub_error_handler(_request: Request, error: HubError):
        return _error_response(error)

    # ----- helpers ---------------------------------------------------------------------------------------------------
    def has_valid_token(request: Request) -> bool:
        if token is None:
            return True
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and hmac.compare_digest(header[len("Bearer ") :].strip(), token)

    def require_write(request: Request) -> None:
        if not has_valid_token(request):
            raise HubError(401, None, "Invalid credentials: this Hub requires `Authorization: Bearer <token>`")

    def open_readable(request: Request, repo_type: str, repo_id: str):
        repo = storage.open(repo_type, repo_id)
        if storage.is_private(repo) and not has_valid_token(request):
            repo.close()
            # As on the Hub: a private repo you can't read looks like a missing one.
            raise HubError(401, "RepoNotFound", f"Repository {repo_type}s/{repo_id} not found")
        return repo

    def repo_url(request: Request, repo_type: str, repo_id: str) -> str:
        prefix = "" if repo_type == "model" else f"{REPO_TYPES[repo_type]}/"
        return f"{str(request.base_url).rstrip('/')}/{prefix}{repo_id}"

    def sign(repo_type: str, repo_id: str, oid: str, size: int) -> str:
        message = f"{repo_type}/{repo_id}/{oid}/{size}".encode()
        return hmac.new(signing_key, message, hashlib.sha256).hexdigest()

    async def json_body(request: Request) -> dict:
        body = await request.body()
        try:
            data = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise HubError(400, None, f"Invalid JSON body: {error}") from error
        if not isinstance(data, dict):
            raise HubError(400, None, "The JSON body must be an object")
        return data

    def repo_info_json(request: Request, repo_type: str, repo_id: str, revision: str | None) -> dict:
        repo = open_readable(request, repo_type, repo_id)
        try:
            sha = storage.resolve(repo, revision or "main")
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
            tags = _card_tags(metadata)
            info = {
                "_id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": sha,
                "lastModified": _iso_time(commit.commit_time),
                "private": storage.is_private(repo),
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": tags,
                "siblings": siblings,
                "cardData": metadata,
                "usedStorage": sum(sibling["size"] for sibling in siblings),
            }
            if repo_type == "model" and metadata:
                info["library_name"] = metadata.get("library_name")
                info["pipeline_tag"] = metadata.get("pipeline_tag")
            if repo_type == "space" and metadata:
                info["sdk"] = metadata.get("sdk")
            return info
        finally:
            repo.close()

    # ----- service ---------------------------------------------------------------------------------------------------
    @app.get("/api/dialoghub/health")
    def health():
        return {"status": "ok"}

    @app.get("/api/whoami-v2")
    def whoami(request: Request):
        if token is not None and not has_valid_token(request):
            raise HubError(401, None, "Invalid user token")
        return {
            "type": "user",
            "id": LOCAL_USER,
            "name": LOCAL_USER,
            "fullname": "dialoghub embedded Hub user",
            "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "local", "role": "write"}},
        }

    @app.post("/api/validate-yaml")
    async def validate_yaml(request: Request):
        data = await json_body(request)
        content = data.get("content")
        if not isinstance(content, str):
            raise HubError(400, None, '"content" must be a string')
        repo_type = validate_repo_type(data.get("repoType"))
        errors = validate_readme_metadata(content, repo_type)
        status = 400 if errors else 200
        return JSONResponse({"errors": [{"message": message} for message in errors], "warnings": []}, status)

    # ----- repos -----------------------------------------------------------------------------------------------------
    @app.post("/api/repos/create")
    async def create_repo(request: Request):
        require_write(request)
        data = await json_body(request)
        repo_type = validate_repo_type(data.get("type"))
        name = data.get("name") or ""
        organization = data.get("organization") or LOCAL_USER
        repo_id = validate_repo_id(organization, name)
        url = repo_url(request, repo_type, repo_id)
        try:
            private = data.get("visibility") in ("private", "protected") or bool(data.get("private"))
            await run_in_threadpool(storage.create, repo_type, repo_id, private)
        except HubError as error:
            if error.status == 409:
                return JSONResponse({"error": error.message, "url": url}, status_code=409)
            raise
        return {"url": url, "name": repo_id}

    @app.delete("/api/repos/delete")
    async def delete_repo(request: Request):
        require_write(request)
        data = await json_body(request)
        repo_type = validate_repo_type(data.get("type"))
        repo_id = validate_repo_id(data.get("organization") or LOCAL_USER, data.get("name") or "")
        await run_in_threadpool(storage.delete, repo_type, repo_id)
        return {}

    @app.get("/api/{type_prefix}")
    def list_repos(type_prefix: str, author: str | None = None, search: str | None = None, limit: int | None = None):
        repo_type = _type_from_prefix(type_prefix)
        results = []
        for repo_id in storage.list_repos(repo_type):
            if (author and repo_id.split("/")[0] != author) or (search and search.lower() not in repo_id.lower()):
                continue
            repo = storage.open(repo_type, repo_id)
            try:
                if storage.is_private(repo):
                    continue  # listings show public repos only
                sha = storage.resolve(repo, "main")
                results.append(
                    {
                        "id": repo_id,
                        "author": repo_id.split("/")[0],
                        "sha": sha,
                        "lastModified": _iso_time(storage.commit_info(repo, sha).commit_time),
                        "private": False,
                        "tags": [],
                        "downloads": 0,
                        "likes": 0,
                    }
                )
            finally:
                repo.close()
            if limit and len(results) >= limit:
                break
        return results

    def repo_id_of(type_prefix: str, namespace: str, name: str) -> tuple[str, str]:
        return _type_from_prefix(type_prefix), validate_repo_id(namespace, name)

    @app.get("/api/{type_prefix}/{namespace}/{name}")
    def repo_info(request: Request, type_prefix: str, namespace: str, name: str):
        repo_type, repo_id = repo_id_of(type_prefix, namespace, name)
        return repo_info_json(request, repo_type, repo_id, None)

    @app.get("/api/{type_prefix}/{namespace}/{name}/revision/{revision:path}")
    def repo_info_at_revision(request: Request, type_prefix: str, namespace: str, name: str, revision: str):
        repo_type, repo_id = repo_id_of(type_prefix, namespace, name)
        return repo_info_json(request, repo_type, repo_id, revision)

    @app.get("/api/{type_prefix}/{namespace}/{name}/refs")
    def list_refs(request: Request, type_prefix: str, namespace: str, name: str):
        repo_type, repo_id = repo_id_of(type_prefix, namespace, name)
        repo = open_readable(request, repo_type, repo_id)
        try:
            return {**storage.refs(repo), "converts": [], "pullRequests": []}
        finally:
            repo.close()

    @app.get("/api/{type_prefix}/{namespace}/{name}/commits/{revision:path}")
    def list_commits(request: Request, type_prefix: str, namespace: str, name: str, revision: str):
        repo_type, repo_id = repo_id_of(type_prefix, namespace, name)
        repo = open_readable(request, repo_type, repo_id)
        try:
            sha = storage.resolve(repo, revision)
            commits = []
            for commit in storage.log(repo, sha):
                message = commit.message.decode("utf-8", "replace")
                title, _, body = message.partition("\n")
                commits.append(
                    {
                        "id": commit.id.decode(),
                        "title": title,
                        "message": body.strip(),
                        "date": _iso_time(commit.commit_time),
                        "authors": [{"user": commit.author.decode().split(" <")[0], "avatar": None}],
                    }
                )
            return commits
        finally:
            repo.close()

    @app.get("/api/{type_prefix}/{namespace}/{name}/tree/{revision}")
    @app.get("/api/{type_prefix}/{namespace}/{name}/tree/{revision}/{path:path}")
    def list_tree(
        request: Request,
        type_prefix: str,
        namespace: str,
        name: str,
        revision: str,
        path: str = "",
        recursive: bool = False,
    ):
        repo_type, repo_id = repo_id_of(type_prefix, namespace, name)
        path = validate_path(path.strip("/")) if path.strip("/") else ""
        repo = open_readable(request, repo_type, repo_id)
        try:
            sha = storage.resolve(repo, revision)
            return [entry.to_json() for entry in storage.list_tree(repo, sha, path, recursive=recursive)]
        finally:
            repo.close()

    @app.post("/api/{type_prefix}/{namespace}/{name}/paths-info/{revision:path}")
    async def paths_info(request: Request, type_prefix: str, namespace: str, name: str, revision: str):
        repo_type, repo_id = repo_id_of(type_prefix, namespace, name)
        if request.headers.get("content-type", "").startswith("application/json"):
            paths = (await json_body(request)).get("paths") or []
        else:
            paths = (await request.form()).getlist("paths")
        paths = [validate_path(str(path).strip("/")) for path in paths]

        def lookup():
            repo = open_readable(request, repo_type, repo_id)
            try:
                sha = storage.resolve(repo, revision)
                return [entry.to_json() for path in paths if (entry := storage.entry(repo, sha, path))]
            finally:
                repo.close()

        return await run_in_threadpool(lookup)

    # ----- writes ----------------------------------------------------------------------------------------------------
    @app.post("/api/{type_prefix}/{namespace}/{name}/preupload/{revision:path}")
    async def preupload(request: Request, type_prefix: str, namespace: str, name: str, revision: str):
        require_write(request)
        repo_type, repo_id = repo_id_of(type_prefix, namespace, name)
        files = (await json_body(request)).get("files")
        if not isinstance(files, list):
            raise HubError(400, None, '"files" must be a list')

        def modes():
            repo = storage.open(repo_type, repo_id)
            try:
                sha = storage.resolve(repo, revision)
                existing = storage.all_files(repo, sha)

                def remote_oid(path: str) -> str | None:
                    # What the client compares with its local oid: git's blob sha1 for regular files, but the
                    # content's sha256 for LFS files (as the Hub does), so unchanged LFS files are skipped too.
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
            finally:
                repo.close()

        return await run_in_threadpool(modes)

    @app.post("/api/{type_prefix}/{namespace}/{name}/commit/{revision:path}")
    async def commit(request: Request, type_prefix: str, namespace: str, name: str, revision: str):
        require_write(request)
        repo_type, repo_id = repo_id_of(type_prefix, namespace, name)
        if request.query_params.get("create_pr") in ("1", "true"):
            raise HubError(400, None, "Pull requests are not supported by the embedded Hub")
        header, operations = _parse_commit_payload(await request.body())
        for operation in operations:
            if operation.path == "README.md" and operation.content is not None:
                errors = validate_readme_metadata(operation.content.decode("utf-8", "replace"), repo_type)
                if errors:
                    raise HubError(400, None, "Invalid metadata in README.md: " + "; ".join(errors))
        sha, _ = await run_in_threadpool(
            storage.commit,
            repo_type,
            repo_id,
            validate_ref_name(revision),
            operations,
            str(header.get("summary") or "Upload files"),
            str(header.get("description") or ""),
            header.get("parentCommit"),
        )
        return {
            "commitOid": sha,
            "commitUrl": f"{repo_url(request, repo_type, repo_id)}/commit/{sha}",
            "pullRequestUrl": None,
            "success": True,
        }

    @app.post("/api/{type_prefix}/{namespace}/{name}/tag/{revision:path}")
    async def create_tag(request: Request, type_prefix: str, namespace: str, name: str, revision: str):
        require_write(request)
        repo_type, repo_id = repo_id_of(type_prefix, namespace, name)
        data = await json_body(request)
        tag = validate_ref_name(str(data.get("tag") or ""))
        await run_in_threadpool(storage.create_tag, repo_type, repo_id, tag, revision, data.get("message"))
        return {}

    @app.delete("/api/{type_prefix}/{namespace}/{name}/tag/{tag:path}")
    async def delete_tag(request: Request, type_prefix: str, namespace: str, name: str, tag: str):
        require_write(request)
        repo_type, repo_id = repo_id_of(type_prefix, namespace, name)
        await run_in_threadpool(storage.delete_ref, repo_type, repo_id, f"refs/tags/{validate_ref_name(tag)}", "Tag")
        return {}

    @app.post("/api/{type_prefix}/{namespace}/{name}/branch/{branch:path}")
    async def create_branch(request: Request, type_prefix: str, namespace: str, name: str, branch: str):
        require_write(request)
        repo_type, repo_id = repo_id_of(type_prefix, namespace, name)
        body = await json_body(request)
        await run_in_threadpool(
            storage.create_branch, repo_type, repo_id, validate_ref_name(branch), body.get("startingPoint")
        )
        return {}

    @app.delete("/api/{type_prefix}/{namespace}/{name}/branch/{branch:path}")
    async def delete_branch(request: Request, type_prefix: str, namespace: str, name: str, branch: str):
        require_write(request)
        repo_type, repo_id = repo_id_of(type_prefix, namespace, name)
        if branch == "main":
            raise HubError(403, None, "The main branch cannot be deleted")
        ref = f"refs/heads/{validate_ref_name(branch)}"
        await run_in_threadpool(storage.delete_ref, repo_type, repo_id, ref, "Branch")
        return {}

    # ----- LFS -------------------------------------------------------------------------------------------------------
    async def lfs_batch(request: Request, repo_type: str, namespace: str, name: str):
        repo_id = validate_repo_id(namespace, name)
        data = await json_body(request)
        operation = data.get("operation")
        if operation == "upload":
            require_write(request)
        storage.open(repo_type, repo_id).close()
        objects = []
        for item in data.get("objects") or []:
            oid, size = str(item.get("oid", "")), item.get("size")
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int) or size < 0:
                objects.append({"oid": oid, "size": size, "error": {"code": 422, "message": "Invalid oid or size"}})
                continue
            entry = {"oid": oid, "size": size}
            if operation == "upload" and not storage.lfs.has(oid, size):
                signature = sign(repo_type, repo_id, oid, size)
                base = str(request.base_url).rstrip("/")
                href = f"{base}/lfs-upload/{repo_type}/{repo_id}/{oid}/{size}?sig={signature}"
                entry["actions"] = {"upload": {"href": href, "expires_in": 86400}}
            elif operation == "download":
                if not storage.lfs.has(oid, size):
                    entry["error"] = {"code": 404, "message": "Object does not exist"}
                else:
                    href = f"{str(request.base_url).rstrip('/')}/lfs-objects/{oid}"
                    entry["actions"] = {"download": {"href": href, "expires_in": 86400}}
            objects.append(entry)
        return JSONResponse(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
            media_type="application/vnd.git-lfs+json",
        )

    @app.post("/datasets/{namespace}/{name}.git/info/lfs/objects/batch")
    async def lfs_batch_dataset(request: Request, namespace: str, name: str):
        return await lfs_batch(request, "dataset", namespace, name)

    @app.post("/spaces/{namespace}/{name}.git/info/lfs/objects/batch")
    async def lfs_batch_space(request: Request, namespace: str, name: str):
        return await lfs_batch(request, "space", namespace, name)

    @app.post("/{namespace}/{name}.git/info/lfs/objects/batch")
    async def lfs_batch_model(request: Request, namespace: str, name: str):
        return await lfs_batch(request, "model", namespace, name)

    @app.put("/lfs-upload/{repo_type}/{namespace}/{name}/{oid}/{size}")
    async def lfs_upload(request: Request, repo_type: str, namespace: str, name: str, oid: str, size: int):
        repo_type = validate_repo_type(repo_type)
        repo_id = validate_repo_id(namespace, name)
        expected = sign(repo_type, repo_id, oid, size)
        if not hmac.compare_digest(request.query_params.get("sig", ""), expected):
            raise HubError(403, None, "Invalid or missing upload signature")
        digest = hashlib.sha256()
        received = 0
        temporary = storage.lfs.temporary_file()
        try:
            with temporary:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > size:
                        raise HubError(400, None, f"Upload is larger than the declared {size} bytes")
                    digest.update(chunk)
                    temporary.write(chunk)
                temporary.flush()
                os.fsync(temporary.fileno())
            if received != size or digest.hexdigest() != oid:
                raise HubError(400, None, f"Upload does not match its oid/size ({received} bytes received)")
            storage.lfs.commit_upload(Path(temporary.name), oid)
        finally:
            Path(temporary.name).unlink(missing_ok=True)
        return Response(status_code=200)

    @app.get("/lfs-objects/{oid}")
    def lfs_download(oid: str):
        if not re.fullmatch(r"[0-9a-f]{64}", oid) or not storage.lfs.has(oid):
            raise HubError(404, "EntryNotFound", "LFS object not found")
        return FileResponse(storage.lfs.path(oid))

    # ----- file downloads --------------------------------------------------------------------------------------------
    def resolve_file(request: Request, repo_type: str, namespace: str, name: str, revision: str, path: str):
        repo_id = validate_repo_id(namespace, name)
        path = validate_path(path)
        repo = open_readable(request, repo_type, repo_id)
        try:
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
            return _bytes_response(request, storage.read_blob(repo, entry.oid), headers)
        finally:
            repo.close()

    for prefix in ("datasets", "spaces"):

        def make_route(repo_type: str):
            def resolve_route(request: Request, namespace: str, name: str, revision: str, path: str):
                return resolve_file(request, repo_type, namespace, name, revision, path)

            return resolve_route

        app.add_api_route(
            f"/{prefix}/{{namespace}}/{{name}}/resolve/{{revision}}/{{path:path}}",
            make_route(URL_PREFIX_TO_TYPE[prefix]),
            methods=["GET", "HEAD"],
        )

    @app.api_route("/{namespace}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
    def resolve_model_file(request: Request, namespace: str, name: str, revision: str, path: str):
        return resolve_file(request, "model", namespace, name, revision, path)

    return app


def _type_from_prefix(type_prefix: str) -> str:
    if type_prefix not in URL_PREFIX_TO_TYPE:
        raise HubError(404, None, f"Unknown repo type {type_prefix!r}")
    return URL_PREFIX_TO_TYPE[type_prefix]


def _iso_time(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _card_tags(metadata: dict | None) -> list[str]:
    if not metadata:
        return []
    tags = []
    for key, prefix in (
        ("tags", ""),
        ("license", "license:"),
        ("language", ""),
        ("task_categories", "task_categories:"),
    ):
        value = metadata.get(key)
        for item in [value] if isinstance(value, str) else value or []:
            tags.append(f"{prefix}{item}")
    return tags


def _parse_commit_payload(body: bytes) -> tuple[dict, list[CommitOperation]]:
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
            if not isinstance(size, int) or size < 0:
                raise HubError(400, None, f"Invalid LFS size for {path}")
            operations.append(CommitOperation("lfsFile", path, lfs_oid=oid, size=size))
        elif key in ("deletedFile", "deletedFolder"):
            operations.append(CommitOperation(key, path))
        else:
            raise HubError(400, None, f"Unsupported commit operation {key!r} on line {number}")
    if not isinstance(header, dict):
        raise HubError(400, None, "The commit payload has no header line")
    return header, operations


def _bytes_response(request: Request, data: bytes, headers: dict[str, str]) -> Response:
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


__all__ = ["create_app", "Entry", "git_blob_sha"]
