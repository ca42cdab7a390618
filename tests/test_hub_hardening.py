"""The audit's hardening items: stalled bodies, control characters in commit messages, case-variant repo names,
oversized LFS uploads and short shas, each against a real server."""

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from dialoghub.hub.client import start_hub

STALLED_CONNECTIONS = 100


@pytest.fixture
def stall_hub(tmp_path):
    """A server with the default cap on connections (64) and a short body timeout."""
    server = start_hub(tmp_path / "root", log_path=tmp_path / "server.log", extra_args=("--body-timeout", "1"))
    yield server
    server.stop()


def stalled_body_connection(endpoint: str) -> socket.socket:
    """A request that declares a 1000-byte body, sends 10 bytes of it, and then nothing."""
    host, port = endpoint.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=60)
    connection.sendall(
        b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + b'{"name": "'
    )
    return connection


def closed_by_server(connection: socket.socket) -> bool:
    """Whether the server closed this connection (EOF or reset), waiting for it at most the socket's timeout."""
    try:
        while data := connection.recv(4096):  # a 503 sent to connections beyond the cap comes before the close
            assert data.startswith(b"HTTP/1.1 503") or b"HTTP/1.1" not in data, data
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_stalled_bodies_are_dropped_and_the_server_keeps_answering(stall_hub, tmp_path):
    health = f"{stall_hub.endpoint}/api/dialoghub/health"
    stalled = [stalled_body_connection(stall_hub.endpoint) for _ in range(STALLED_CONNECTIONS)]
    try:
        # Bounded retries: while the stalled connections fill the cap a client may get 503; once their bodies time
        # out, it is answered again. Without the body timeout, it never would be.
        statuses = []
        for _ in range(200):
            statuses.append(httpx.get(health, timeout=30).status_code)
            if statuses[-1] == 200:
                break
            time.sleep(0.1)
        assert statuses[-1] == 200, statuses
        assert all(closed_by_server(connection) for connection in stalled)
    finally:
        for connection in stalled:
            connection.close()
    assert httpx.get(health).status_code == 200
    api = HfApi(endpoint=stall_hub.endpoint)
    api.create_repo("stall/after")  # writes still work
    assert api.model_info("stall/after").id == "stall/after"
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log


@pytest.mark.parametrize("summary", ["bad \x00 nul", "bell \x07 char", "two\nlines"])
def test_control_characters_in_a_commit_summary_are_refused(hub, hub_api, repo_name, summary):
    hub_api.create_repo(repo_name)
    with pytest.raises(HfHubHTTPError) as error:
        hub_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_name, commit_message=summary)
    assert error.value.response.status_code == 400
    with pytest.raises(HfHubHTTPError) as error:
        hub_api.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_name, commit_description="a \x00 b"
        )
    assert error.value.response.status_code == 400
    with pytest.raises(HfHubHTTPError) as error:
        hub_api.create_tag(repo_name, tag="v1", tag_message="nul \x00 tag")
    assert error.value.response.status_code == 400
    # Tabs and line breaks in the description are fine; the repo stays fsck-clean (the autouse fixture checks it).
    hub_api.upload_file(
        path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_name, commit_description="line one\n\tline two"
    )
    assert [commit.title for commit in hub_api.list_repo_commits(repo_name)][0] == "Upload x.txt with huggingface_hub"
    bare = hub.root / "models" / f"{repo_name}.git"
    fsck = subprocess.run(["git", "fsck", "--full", "--strict"], cwd=bare, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_repo_names_are_unique_case_insensitively(hub_api, repo_name):
    namespace, name = repo_name.split("/")
    mixed = f"{namespace}/{name}-MixedCase"
    hub_api.create_repo(mixed)
    for variant in (f"{namespace}/{name}-mixedcase", f"{namespace.upper()}/{name}-MIXEDCASE"):
        with pytest.raises(HfHubHTTPError) as error:
            hub_api.create_repo(variant)
        assert error.value.response.status_code == 409
    assert hub_api.create_repo(f"{namespace}/{name}-mixedcase", exist_ok=True)  # the client's exist_ok reads a 409

    other = f"{namespace}/{name}-Other"
    hub_api.create_repo(other)
    with pytest.raises(HfHubHTTPError) as error:
        hub_api.move_repo(other, f"{namespace}/{name}-MIXEDcase")
    assert error.value.response.status_code == 409
    with pytest.raises(HfHubHTTPError) as error:
        hub_api.duplicate_repo(other, f"{namespace}/{name}-mixedCASE")
    assert error.value.response.status_code == 409
    hub_api.move_repo(other, f"{namespace}/{name}-other")  # a repo may change the case of its own name
    assert hub_api.model_info(f"{namespace}/{name}-other").id == f"{namespace}/{name}-other"


def test_lfs_batch_refuses_objects_over_the_size_cap(hub, hub_api, repo_name):
    hub_api.create_repo(repo_name)
    objects = [
        {"oid": "a" * 64, "size": 2**70},
        {"oid": "b" * 64, "size": 60 * 1024**3},
        {"oid": "c" * 64, "size": 1024},
    ]
    response = httpx.post(
        f"{hub.endpoint}/{repo_name}.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic"], "objects": objects},
        headers={"Accept": "application/vnd.git-lfs+json"},
    )
    assert response.status_code == 200
    answered = {item["oid"][0]: item for item in response.json()["objects"]}
    for oversized in "ab":
        assert answered[oversized]["error"]["code"] == 422 and "actions" not in answered[oversized]
    assert "upload" in answered["c"]["actions"]


def test_short_shas_are_resolved(hub, hub_api, repo_name, tmp_path):
    hub_api.create_repo(repo_name)
    info = hub_api.create_commit(
        repo_name, [CommitOperationAdd("config.json", b'{"short": true}')], commit_message="add config"
    )
    hub_api.upload_file(path_or_fileobj=b'{"short": false}', path_in_repo="config.json", repo_id=repo_name)
    full = info.oid
    short = full[:7]
    response = httpx.get(f"{hub.endpoint}/{repo_name}/resolve/{short}/config.json")
    assert response.status_code == 200 and response.json() == {"short": True}
    assert response.headers["x-repo-commit"] == full
    assert hub_api.model_info(repo_name, revision=short).sha == full
    path = hf_hub_download(repo_name, "config.json", revision=short[:10], cache_dir=tmp_path / "cache")
    assert Path(path).read_text() == '{"short": true}'
    assert httpx.get(f"{hub.endpoint}/{repo_name}/resolve/{short[:6]}/config.json").status_code == 404
    assert httpx.get(f"{hub.endpoint}/{repo_name}/resolve/{'0' * 12}/config.json").status_code == 404
