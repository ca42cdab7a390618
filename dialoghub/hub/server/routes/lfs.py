"""Basic LFS: the batch API and signed URLs for uploads and downloads, each scoped to one repo.

The client PUTs and GETs these URLs without auth headers, as it would presigned S3 URLs, so the signature carries
the authorisation: a download URL is handed out only to a caller who may read the repo, and only for an object that
was uploaded to that repo.
"""

import hashlib
import hmac
import os
import re
import time
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from dialoghub.hub.server.dependencies import (
    Body,
    RepoRef,
    Settings,
    base_url,
    json_body,
    open_readable,
    open_repo,
    require_write,
    url_repo,
)
from dialoghub.hub.server.validation import URL_PREFIX_TO_TYPE, HubError, validate_repo_id, validate_repo_type

router = APIRouter()
URL_EXPIRY_S = 86400
LFS_OID = r"[0-9a-f]{64}"


class LfsObject(Body):
    oid: str
    size: int


class LfsBatchBody(Body):
    operation: Literal["upload", "download"]
    objects: list[LfsObject]


def sign(settings: Settings, *fields: object) -> str:
    message = "/".join(map(str, fields)).encode()
    return hmac.new(settings.signing_key, message, hashlib.sha256).hexdigest()


def check_signature(settings: Settings, signature: str, *fields: object) -> None:
    if not hmac.compare_digest(signature.encode(), sign(settings, *fields).encode()):
        raise HubError(403, None, "Invalid or missing signature")


def batch_route(repo_type: str):
    def route(
        request: Request,
        settings: Settings,
        ref: Annotated[RepoRef, Depends(url_repo(repo_type))],
        body: Annotated[LfsBatchBody, Depends(json_body(LfsBatchBody))],
    ):
        if body.operation == "upload":
            require_write(request)
        storage = settings.storage
        with open_readable(request, ref) as repo:
            objects = []
            for item in body.objects:
                oid, size = item.oid, item.size
                entry = {"oid": oid, "size": size}
                if not re.fullmatch(LFS_OID, oid) or size < 0:
                    entry["error"] = {"code": 422, "message": "Invalid oid or size"}
                elif body.operation == "upload" and size > settings.max_lfs_bytes:
                    message = f"Size must be at most {settings.max_lfs_bytes} bytes (the Hub's cap on one file)"
                    entry["error"] = {"code": 422, "message": message}
                elif body.operation == "upload" and not storage.has_lfs_object(repo, oid, size):
                    # Uploaded (with its sha256 checked) to this repo, even when another repo holds the same bytes:
                    # only that proves the caller has them.
                    signature = sign(settings, ref.type, ref.id, oid, size)
                    href = f"{base_url(request)}/lfs-upload/{ref.type}/{ref.id}/{oid}/{size}?sig={signature}"
                    entry["actions"] = {"upload": {"href": href, "expires_in": URL_EXPIRY_S}}
                elif body.operation == "download":
                    if not storage.has_lfs_object(repo, oid, size):
                        entry["error"] = {"code": 404, "message": "Object does not exist"}
                    else:
                        expires = int(time.time()) + URL_EXPIRY_S
                        signature = sign(settings, "download", ref.type, ref.id, oid, expires)
                        query = f"expires={expires}&sig={signature}"
                        href = f"{base_url(request)}/lfs-objects/{ref.type}/{ref.id}/{oid}?{query}"
                        entry["actions"] = {"download": {"href": href, "expires_in": URL_EXPIRY_S}}
                objects.append(entry)
        return JSONResponse(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
            media_type="application/vnd.git-lfs+json",
        )

    return route


# Model repos have no prefix, so their route comes last.
for _prefix in ("datasets", "spaces"):
    router.add_api_route(
        f"/{_prefix}/{{namespace}}/{{name}}.git/info/lfs/objects/batch",
        batch_route(URL_PREFIX_TO_TYPE[_prefix]),
        methods=["POST"],
    )
router.add_api_route("/{namespace}/{name}.git/info/lfs/objects/batch", batch_route("model"), methods=["POST"])


@router.put("/lfs-upload/{repo_type}/{namespace}/{name}/{oid}/{size}")
async def lfs_upload(
    request: Request, settings: Settings, repo_type: str, namespace: str, name: str, oid: str, size: int, sig: str = ""
):
    ref = RepoRef(validate_repo_type(repo_type), validate_repo_id(namespace, name))
    check_signature(settings, sig, ref.type, ref.id, oid, size)
    storage = settings.storage
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
        storage.record_lfs_upload(ref.type, ref.id, oid, size)
    finally:
        Path(temporary.name).unlink(missing_ok=True)
    return Response(status_code=200)


@router.get("/lfs-objects/{repo_type}/{namespace}/{name}/{oid}")
def lfs_download(
    settings: Settings,
    repo_type: str,
    namespace: str,
    name: str,
    oid: str,
    expires: Annotated[int, Query()],
    sig: str = "",
):
    ref = RepoRef(validate_repo_type(repo_type), validate_repo_id(namespace, name))
    check_signature(settings, sig, "download", ref.type, ref.id, oid, expires)
    if expires < time.time():
        raise HubError(403, None, "This download URL has expired")
    storage = settings.storage
    with open_repo(storage, ref) as repo:
        path = storage.lfs.path(oid)
        if not (path.is_file() and storage.has_lfs_object(repo, oid, path.stat().st_size)):  # gone since signed
            raise HubError(404, "EntryNotFound", "LFS object not found")
    return FileResponse(path)
