"""Basic LFS: the batch API, signed upload URLs, and object downloads."""

import hashlib
import hmac
import os
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from dialoghub.hub.dependencies import RepoRef, Settings, Storage, base_url, json_body, require_write
from dialoghub.hub.validation import URL_PREFIX_TO_TYPE, HubError, validate_repo_id, validate_repo_type

router = APIRouter()
URL_EXPIRY_S = 86400


def sign(settings: Settings, ref: RepoRef, oid: str, size: int) -> str:
    message = f"{ref.type}/{ref.id}/{oid}/{size}".encode()
    return hmac.new(settings.signing_key, message, hashlib.sha256).hexdigest()


def batch_route(repo_type: str):
    async def route(request: Request, settings: Settings, namespace: str, name: str):
        ref = RepoRef(repo_type, validate_repo_id(namespace, name))
        storage = settings.storage
        data = await json_body(request)
        operation = data.get("operation")
        if operation == "upload":
            require_write(request)
        storage.open(ref.type, ref.id).close()  # a missing repo is a 404
        objects = []
        for item in data.get("objects") or []:
            oid, size = str(item.get("oid", "")), item.get("size")
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int) or size < 0:
                objects.append({"oid": oid, "size": size, "error": {"code": 422, "message": "Invalid oid or size"}})
                continue
            entry = {"oid": oid, "size": size}
            if operation == "upload" and not storage.lfs.has(oid, size):
                signature = sign(settings, ref, oid, size)
                href = f"{base_url(request)}/lfs-upload/{ref.type}/{ref.id}/{oid}/{size}?sig={signature}"
                entry["actions"] = {"upload": {"href": href, "expires_in": URL_EXPIRY_S}}
            elif operation == "download":
                if not storage.lfs.has(oid, size):
                    entry["error"] = {"code": 404, "message": "Object does not exist"}
                else:
                    href = f"{base_url(request)}/lfs-objects/{oid}"
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
    request: Request, settings: Settings, repo_type: str, namespace: str, name: str, oid: str, size: int
):
    ref = RepoRef(validate_repo_type(repo_type), validate_repo_id(namespace, name))
    if not hmac.compare_digest(request.query_params.get("sig", ""), sign(settings, ref, oid, size)):
        raise HubError(403, None, "Invalid or missing upload signature")
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
    finally:
        Path(temporary.name).unlink(missing_ok=True)
    return Response(status_code=200)


@router.get("/lfs-objects/{oid}")
def lfs_download(storage: Storage, oid: str):
    if not re.fullmatch(r"[0-9a-f]{64}", oid) or not storage.lfs.has(oid):
        raise HubError(404, "EntryNotFound", "LFS object not found")
    return FileResponse(storage.lfs.path(oid))
