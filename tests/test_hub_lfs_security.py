"""LFS objects are reachable only through a repo the caller may read, and only objects uploaded to that repo."""

import base64
import hashlib
import json
import os

import httpx
import pytest
from huggingface_hub import HfApi

from dialoghub.hub.client import start_hub
from dialoghub.hub.server.storage import lfs_pointer

TOKEN = "s3cret"


@pytest.fixture
def token_hub(tmp_path):
    server = start_hub(tmp_path / "root", token=TOKEN, log_path=tmp_path / "server.log")
    yield server
    server.stop()


@pytest.fixture
def secret(token_hub) -> bytes:
    """An LFS file in the private repo `sec/private`, beside an empty public `sec/public`."""
    owner = HfApi(endpoint=token_hub.endpoint, token=TOKEN)
    owner.create_repo("sec/private", private=True)
    owner.create_repo("sec/public")
    data = os.urandom(5000)
    owner.upload_file(path_or_fileobj=data, path_in_repo="secret.bin", repo_id="sec/private")
    return data


def commit_file(endpoint: str, repo_id: str, path: str, content: bytes) -> httpx.Response:
    lines = [
        {"key": "header", "value": {"summary": "regular file"}},
        {"key": "file", "value": {"path": path, "content": base64.b64encode(content).decode(), "encoding": "base64"}},
    ]
    return httpx.post(
        f"{endpoint}/api/models/{repo_id}/commit/main",
        content="\n".join(json.dumps(line) for line in lines).encode(),
        headers={"authorization": f"Bearer {TOKEN}"},
    )


def batch(endpoint: str, repo_id: str, oid: str, size: int, token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body = {"operation": "download", "objects": [{"oid": oid, "size": size}]}
    return httpx.post(f"{endpoint}/{repo_id}.git/info/lfs/objects/batch", json=body, headers=headers)


def test_lfs_downloads_need_a_readable_repo_that_holds_the_object(token_hub, secret):
    oid = hashlib.sha256(secret).hexdigest()

    assert httpx.get(f"{token_hub.endpoint}/lfs-objects/{oid}").status_code == 404  # no unscoped object URL
    unsigned = httpx.get(f"{token_hub.endpoint}/lfs-objects/model/sec/private/{oid}", params={"expires": 2**40})
    assert unsigned.status_code == 403
    assert batch(token_hub.endpoint, "sec/private", oid, len(secret), token=None).status_code == 401
    # A public repo that never received the object hands out no URL for it.
    public_batch = batch(token_hub.endpoint, "sec/public", oid, len(secret), token=None).json()["objects"][0]
    assert "actions" not in public_batch and public_batch["error"]["code"] == 404

    granted = batch(token_hub.endpoint, "sec/private", oid, len(secret), token=TOKEN).json()["objects"][0]
    href = granted["actions"]["download"]["href"]
    assert httpx.get(href).content == secret  # the signed URL works without a token, like a presigned one
    assert httpx.get(href.replace("sec/private", "sec/public")).status_code == 403
    assert httpx.get(href[:-1] + ("0" if href[-1] != "0" else "1")).status_code == 403


def test_pointer_shaped_regular_files_stay_regular_content(token_hub, secret):
    owner = HfApi(endpoint=token_hub.endpoint, token=TOKEN)
    anonymous = HfApi(endpoint=token_hub.endpoint, token=False)
    secret_oid = hashlib.sha256(secret).hexdigest()
    own = os.urandom(3000)
    owner.upload_file(path_or_fileobj=own, path_in_repo="own.bin", repo_id="sec/public")
    own_oid = hashlib.sha256(own).hexdigest()

    forged = {
        "stolen.txt": lfs_pointer(secret_oid, len(secret)),  # another repo's object
        "missing.txt": lfs_pointer("0" * 64, 10),  # no such object
        "wrong-size.txt": lfs_pointer(own_oid, len(own) + 1),  # this repo's object, the wrong size
    }
    for path, pointer in forged.items():
        assert commit_file(token_hub.endpoint, "sec/public", path, pointer).status_code == 200
    tree = {entry.path: entry for entry in anonymous.list_repo_tree("sec/public")}
    for path, pointer in forged.items():
        assert tree[path].lfs is None and tree[path].size == len(pointer), path
        for method in ("GET", "HEAD"):
            response = httpx.request(method, f"{token_hub.endpoint}/sec/public/resolve/main/{path}")
            assert response.status_code == 200, (path, method)
            assert "x-linked-size" not in response.headers
        assert httpx.get(f"{token_hub.endpoint}/sec/public/resolve/main/{path}").content == pointer
    assert tree["own.bin"].lfs is not None  # an object uploaded to this repo is still an LFS file

    # Naming another repo's object in an lfsFile operation does not make it this repo's.
    steal = [
        {"key": "header", "value": {"summary": "steal"}},
        {"key": "lfsFile", "value": {"path": "s.bin", "algo": "sha256", "oid": secret_oid, "size": len(secret)}},
    ]
    response = httpx.post(
        f"{token_hub.endpoint}/api/models/sec/public/commit/main",
        content="\n".join(json.dumps(line) for line in steal).encode(),
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400 and "was not uploaded" in response.json()["error"]
    assert "s.bin" not in anonymous.list_repo_files("sec/public")
