"""A server killed at every write of the commit path restarts clean, and the same upload then succeeds."""

import base64
import hashlib
import json
import random
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from dialoghub.hub.client import start_hub
from dialoghub.hub.server.faults import FAULTS_ENV, KILL_AT_HEADER

MIN_KILL_POINTS = 20
REGULAR_FILES = {
    "README.md": b"# killed and retried\n",
    "a/one.txt": b"one\n",
    "a/b/two.txt": b"two\n",
    "c/three.txt": b"three\n",
}
RANDOM = random.Random(0)
LFS_FILES = {"weights.bin": RANDOM.randbytes(4096), "c/more.bin": RANDOM.randbytes(2048)}


def upload(endpoint: str, repo_id: str, kill_at: int | None = None) -> str:
    """The client's upload, request by request: LFS batch, PUT of each object, then the NDJSON commit."""
    headers = {KILL_AT_HEADER: str(kill_at)} if kill_at else {}
    with httpx.Client(base_url=endpoint, headers=headers, timeout=60) as client:
        oids = {path: hashlib.sha256(data).hexdigest() for path, data in LFS_FILES.items()}
        objects = [{"oid": oids[path], "size": len(data)} for path, data in LFS_FILES.items()]
        batch = client.post(f"/{repo_id}.git/info/lfs/objects/batch", json={"operation": "upload", "objects": objects})
        batch.raise_for_status()
        by_oid = {oid: LFS_FILES[path] for path, oid in oids.items()}
        for item in batch.json()["objects"]:
            if "actions" in item:
                client.put(item["actions"]["upload"]["href"], content=by_oid[item["oid"]]).raise_for_status()
        lines = [{"key": "header", "value": {"summary": "killed and retried"}}]
        lines += [
            {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}
            for path, data in REGULAR_FILES.items()
        ]
        lines += [
            {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oids[path], "size": len(data)}}
            for path, data in LFS_FILES.items()
        ]
        commit = client.post(
            f"/api/models/{repo_id}/commit/main", content="\n".join(json.dumps(line) for line in lines).encode()
        )
        commit.raise_for_status()
        return commit.json()["commitOid"]


def leftover_locks(root) -> dict[str, int]:
    locks = [path.relative_to(root) for path in root.glob("models/*/*.git/**/*.lock")]
    return {
        "objects": sum(1 for lock in locks if "objects" in lock.parts),
        "refs": sum(1 for lock in locks if "refs" in lock.parts),
    }


def test_kill_at_every_write_of_the_commit_path_then_retry_succeeds(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULTS_ENV, "1")
    root = tmp_path / "root"
    server = start_hub(root, log_path=tmp_path / "server.log")
    kills = 0
    locks_left = {"objects": 0, "refs": 0}
    try:
        for kill_at in range(1, 200):
            repo_id = f"kill/at-{kill_at}"
            HfApi(endpoint=server.endpoint).create_repo(repo_id)
            try:
                upload(server.endpoint, repo_id, kill_at=kill_at)
                break  # this upload has fewer writes than kill_at: every point has been tried
            except httpx.TransportError:
                pass
            assert server.process.wait(timeout=60) == -signal.SIGKILL
            kills += 1
            for kind, count in leftover_locks(root).items():
                locks_left[kind] += count

            server = start_hub(root, log_path=tmp_path / "server.log")
            commit = upload(server.endpoint, repo_id)
            api = HfApi(endpoint=server.endpoint)
            assert api.list_repo_commits(repo_id)[0].commit_id == commit
            for path, data in {**REGULAR_FILES, **LFS_FILES}.items():
                downloaded = api.hf_hub_download(repo_id, path, cache_dir=tmp_path / "cache")
                assert Path(downloaded).read_bytes() == data
            bare = root / "models" / f"{repo_id}.git"
            fsck = subprocess.run(["git", "fsck", "--full", "--strict"], cwd=bare, capture_output=True, text=True)
            assert fsck.returncode == 0, fsck.stderr
    finally:
        server.stop()
    assert kills >= MIN_KILL_POINTS
    # The kills landed inside dulwich's lock-file windows, for objects and for the branch ref alike.
    assert locks_left["objects"] > 0 and locks_left["refs"] > 0


def test_one_root_has_one_server(tmp_path):
    first = start_hub(tmp_path / "root", log_path=tmp_path / "first.log")
    try:
        with pytest.raises(RuntimeError, match="exited with code 1"):
            start_hub(tmp_path / "root", log_path=tmp_path / "second.log")
        assert "Another Hub server is serving" in (tmp_path / "second.log").read_text()
        assert HfApi(endpoint=first.endpoint).create_repo("still/served").repo_id == "still/served"
    finally:
        first.stop()
