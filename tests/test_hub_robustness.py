"""Crash safety, authentication and hostile input, each against a real server process of its own."""

import base64
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from dialoghub.hub.client import start_hub
from dialoghub.hub.server.storage import parse_lfs_pointer


@pytest.fixture
def own_hub(tmp_path):
    """A separate server (optionally with a token or a small body cap) rooted inside tmp_path/sandbox/root."""
    servers = []

    def start(token=None, extra_args=()):
        server = start_hub(
            tmp_path / "sandbox" / "root", token=token, extra_args=extra_args, log_path=tmp_path / "server.log"
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def commit_payload(path: str, content: bytes) -> bytes:
    lines = [
        {"key": "header", "value": {"summary": "hostile"}},
        {"key": "file", "value": {"path": path, "content": base64.b64encode(content).decode(), "encoding": "base64"}},
    ]
    return "\n".join(json.dumps(line) for line in lines).encode()


def files_outside_root(tmp_path: Path) -> set[str]:
    """Everything under tmp_path but the server's root and log: a write that escaped the root would show here."""
    paths = {str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")}
    return {path for path in paths if not path.startswith("sandbox/root") and path != "server.log"}


PAYLOAD_BYTES = 3_000_000


def freeze_mid_upload(server, deadline: float) -> Path:
    """SIGSTOP the server at a moment it holds a partly written upload in its tmp/ folder, and return that file.

    Stopped, the server cannot write another byte, so what the folder shows then is what the kill will find. If the
    upload seen a moment before completed in between, the server is let go (SIGCONT) until the next one."""
    while True:
        assert time.monotonic() < deadline, "no upload in flight was caught"
        if partial_upload(server.root / "tmp"):
            os.kill(server.process.pid, signal.SIGSTOP)
            if frozen := partial_upload(server.root / "tmp"):
                return frozen
            os.kill(server.process.pid, signal.SIGCONT)
        time.sleep(0.001)


def partial_upload(tmp: Path) -> Path | None:
    """An upload in flight: a temporary file with some, not all, of the payload (renamed away once complete)."""
    for path in tmp.glob("lfs-*"):
        try:
            if 0 < path.stat().st_size < PAYLOAD_BYTES:
                return path
        except FileNotFoundError:
            continue
    return None


def test_sigkill_during_uploads_leaves_consistent_branches(own_hub, tmp_path):
    server = own_hub()
    api = HfApi(endpoint=server.endpoint)
    repo_id = "crash/target"
    api.create_repo(repo_id)
    stop = threading.Event()
    acknowledged = []

    def upload_forever():
        index = 0
        while not stop.is_set():
            try:
                payload = os.urandom(PAYLOAD_BYTES)
                info = api.upload_file(path_or_fileobj=payload, path_in_repo=f"blob{index}.bin", repo_id=repo_id)
                acknowledged.append((info.oid, f"blob{index}.bin"))
                index += 1
            except Exception:  # noqa: BLE001 - the server is being killed under us
                return

    uploader = threading.Thread(target=upload_forever)
    uploader.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(acknowledged) >= 2
    in_flight = freeze_mid_upload(server, deadline=time.monotonic() + 120)
    os.kill(server.process.pid, signal.SIGKILL)  # kills the frozen process: the upload never gets further
    server.process.wait()
    stop.set()
    uploader.join()
    assert 0 < in_flight.stat().st_size < PAYLOAD_BYTES, "the kill landed while an upload was being written"

    bare = server.root / "models" / "crash" / "target.git"
    fsck = subprocess.run(["git", "fsck", "--full", "--strict"], cwd=bare, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr

    restarted = own_hub()
    api = HfApi(endpoint=restarted.endpoint)
    head = api.list_repo_refs(repo_id).branches[0].target_commit
    history = [commit.commit_id for commit in api.list_repo_commits(repo_id)]
    assert head == history[0]
    last_acknowledged_commit, _ = acknowledged[-1]
    assert last_acknowledged_commit in history  # nothing acknowledged was lost
    for entry in api.list_repo_tree(repo_id, recursive=True):
        if entry.path.endswith(".bin"):  # every LFS pointer on the branch has its complete object
            oid = entry.lfs.sha256
            stored = restarted.root / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == oid
    assert not list((restarted.root / "tmp").iterdir())  # half-written uploads were swept


def test_token_guards_writes_and_private_reads(own_hub):
    server = own_hub(token="s3cret")
    anonymous = HfApi(endpoint=server.endpoint, token=False)
    owner = HfApi(endpoint=server.endpoint, token="s3cret")
    wrong = HfApi(endpoint=server.endpoint, token="nope")

    with pytest.raises(HfHubHTTPError) as error:
        anonymous.create_repo("auth/public")
    assert error.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError):
        wrong.create_repo("auth/public")

    owner.create_repo("auth/public")
    owner.create_repo("auth/secret", private=True)
    owner.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="auth/secret")
    assert anonymous.model_info("auth/public").id == "auth/public"
    with pytest.raises(HfHubHTTPError) as error:
        anonymous.model_info("auth/secret")
    assert error.value.response.status_code in (401, 404)
    assert httpx.get(f"{server.endpoint}/auth/secret/resolve/main/x.txt").status_code in (401, 404)
    assert owner.model_info("auth/secret").private is True
    with pytest.raises(HfHubHTTPError) as error:
        anonymous.upload_file(path_or_fileobj=b"y", path_in_repo="y.txt", repo_id="auth/public")
    assert error.value.response.status_code == 401


def test_hostile_requests_get_4xx_and_write_nothing_outside_the_root(own_hub, tmp_path):
    server = own_hub(extra_args=("--max-body-mb", "1"))
    HfApi(endpoint=server.endpoint).create_repo("safe/repo")
    before_outside = files_outside_root(tmp_path)
    head_before = HfApi(endpoint=server.endpoint).list_repo_refs("safe/repo").branches[0].target_commit
    client = httpx.Client(base_url=server.endpoint)

    traversal_paths = [
        "../escape.txt",
        "a/../../escape.txt",
        "/etc/escape.txt",
        ".git/config",
        "sub/.git/hooks/x",
        "bad\x00name",
        "line\nbreak",
        "win\\path",
    ]
    for path in traversal_paths:
        response = client.post("/api/models/safe/repo/commit/main", content=commit_payload(path, b"pwned"))
        assert 400 <= response.status_code < 500, (path, response.status_code)
    for url in [
        "/safe/repo/resolve/main/..%2F..%2Fescape.txt",
        "/safe/repo/resolve/main/.git/config",
        "/api/models/safe/repo/tree/main/..%2F..",
    ]:
        assert 400 <= client.get(url).status_code < 500, url
    for bad_id in [("..", "x"), ("a", ".."), ("a", "b.git"), ("-a", "b"), ("a b", "c")]:
        response = client.post("/api/repos/create", json={"organization": bad_id[0], "name": bad_id[1]})
        assert response.status_code == 400, bad_id
    assert client.get("/api/models/safe/..%2F..%2Fetc").status_code >= 400

    oversized = client.post("/api/models/safe/repo/commit/main", content=commit_payload("big.txt", b"x" * 2_000_000))
    assert oversized.status_code == 413

    def chunks():
        for _ in range(3):
            yield b"y" * 600_000

    streamed = client.post("/api/models/safe/repo/commit/main", content=chunks())
    assert streamed.status_code == 413

    assert client.post("/api/models/safe/repo/commit/main", content=b"{not json").status_code == 400
    assert (
        client.post("/api/models/safe/repo/commit/main", content=commit_payload("ok.txt", b"fine")).status_code == 200
    )
    assert HfApi(endpoint=server.endpoint).list_repo_files("safe/repo") == [".gitattributes", "ok.txt"]
    assert HfApi(endpoint=server.endpoint).list_repo_commits("safe/repo")[1].commit_id == head_before
    assert files_outside_root(tmp_path) == before_outside


def test_validate_yaml_parses_the_card(hub):
    client = httpx.Client(base_url=hub.endpoint)
    good = client.post(
        "/api/validate-yaml", json={"content": "---\nlicense: mit\ntags: [a]\n---\n# x", "repoType": "model"}
    )
    assert good.status_code == 200 and good.json()["errors"] == []
    for content in [
        "---\nlicense: [unclosed\n---\n",
        "---\ntags: {a: 1}\n---\n",
        "---\nmodel-index: 3\n---\n",
        "---\n- just\n- a list\n---\n",
    ]:
        response = client.post("/api/validate-yaml", json={"content": content, "repoType": "model"})
        assert response.status_code == 400 and response.json()["errors"], content
    configs = "---\nconfigs:\n- config_name: default\n  data_files: data/*.parquet\n---\n"
    assert client.post("/api/validate-yaml", json={"content": configs, "repoType": "dataset"}).status_code == 200


def test_commit_with_invalid_card_yaml_is_refused(hub_api, repo_name):
    hub_api.create_repo(repo_name)
    with pytest.raises(ValueError, match="Invalid metadata"):
        hub_api.upload_file(path_or_fileobj=b"---\ntags: [oops\n---\n", path_in_repo="README.md", repo_id=repo_name)
    assert "README.md" not in hub_api.list_repo_files(repo_name)


def test_lfs_pointer_round_trip():
    from dialoghub.hub.server.storage import lfs_pointer

    assert parse_lfs_pointer(lfs_pointer("a" * 64, 12)) == ("a" * 64, 12)
    assert parse_lfs_pointer(b"plain text") is None
