"""`git clone http://HOST/ORG/NAME` against the real embedded Hub: smart HTTP (dulwich), read-only, LFS via git-lfs."""

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from dialoghub.hub.client import start_hub
from dialoghub.hub.server.storage import parse_lfs_pointer

needs_git_lfs = pytest.mark.skipif(shutil.which("git-lfs") is None, reason="needs Debian's git-lfs (apt-get install)")


@pytest.fixture
def git(tmp_path):
    """`git` with a throw-away HOME (git-lfs's filters installed there), never prompting for credentials."""
    home = tmp_path / "home"
    home.mkdir()
    environment = {**os.environ, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
    if shutil.which("git-lfs"):
        subprocess.run(["git", "lfs", "install", "--skip-repo"], env=environment, check=True, capture_output=True)

    def run(*args, cwd=tmp_path, check=True):
        result = subprocess.run(["git", *args], cwd=cwd, env=environment, capture_output=True, text=True)
        assert not check or result.returncode == 0, result.stderr
        return result

    return run


def upload_files(api: HfApi, repo_id: str, repo_type: str, files: dict[str, bytes]) -> None:
    for path, content in files.items():
        api.upload_file(path_or_fileobj=content, path_in_repo=path, repo_id=repo_id, repo_type=repo_type)


def cloned_files(clone: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(clone)): path.read_bytes()
        for path in clone.rglob("*")
        if path.is_file() and path.relative_to(clone).parts[0] != ".git"
    }


@needs_git_lfs
@pytest.mark.parametrize("repo_type", ["model", "dataset"])
def test_git_clone_over_http_brings_lfs_content(hub, hub_api, git, repo_name, tmp_path, repo_type):
    hub_api.create_repo(repo_name, repo_type=repo_type)
    files = {"README.md": b"# clone me\n", "src/x.py": b"print(1)\n", "weights.safetensors": os.urandom(40_000)}
    upload_files(hub_api, repo_name, repo_type, files)
    prefix = "" if repo_type == "model" else "datasets/"
    git("clone", "-q", f"{hub.endpoint}/{prefix}{repo_name}", "clone")
    cloned = cloned_files(tmp_path / "clone")
    assert set(cloned) == set(hub_api.list_repo_files(repo_name, repo_type=repo_type))
    assert {path: cloned[path] for path in files} == files  # the LFS file arrives as its content, not a pointer
    assert git("log", "--format=%H", "-1", cwd=tmp_path / "clone").stdout.strip() == (
        hub_api.repo_info(repo_name, repo_type=repo_type).sha
    )
    git("fsck", "--strict", cwd=tmp_path / "clone")


def test_git_clone_without_lfs_smudge_gets_pointers_and_branches(hub, hub_api, git, repo_name, tmp_path):
    hub_api.create_repo(repo_name)
    blob = os.urandom(20_000)
    upload_files(hub_api, repo_name, "model", {"model.safetensors": blob})
    hub_api.create_branch(repo_name, branch="feature/x")
    hub_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_name, revision="feature/x")
    hub_api.create_tag(repo_name, tag="v1")
    git("-c", "filter.lfs.smudge=", "-c", "filter.lfs.process=", "-c", "filter.lfs.required=false",
        "clone", "-q", f"{hub.endpoint}/{repo_name}.git", "clone")  # fmt: skip
    pointer = parse_lfs_pointer((tmp_path / "clone" / "model.safetensors").read_bytes())
    tree = {entry.path: entry for entry in hub_api.list_repo_tree(repo_name)}
    assert pointer == (tree["model.safetensors"].lfs.sha256, len(blob))
    remote = git("ls-remote", f"{hub.endpoint}/{repo_name}").stdout
    assert "refs/heads/feature/x" in remote and "refs/tags/v1" in remote and "refs/heads/main" in remote


def test_git_push_is_refused(hub, hub_api, git, repo_name, tmp_path):
    hub_api.create_repo(repo_name)
    head = hub_api.repo_info(repo_name).sha
    git("clone", "-q", f"{hub.endpoint}/{repo_name}", "clone")
    clone = tmp_path / "clone"
    (clone / "pushed.txt").write_text("nope")
    git("add", "pushed.txt", cwd=clone)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "push attempt", cwd=clone)
    assert git("push", "origin", "main", cwd=clone, check=False).returncode != 0
    assert hub_api.repo_info(repo_name).sha == head
    for service in ("git-receive-pack", None):  # neither a push nor git's dumb protocol is served
        params = {"service": service} if service else {}
        assert httpx.get(f"{hub.endpoint}/{repo_name}/info/refs", params=params).status_code == 403
    assert httpx.post(f"{hub.endpoint}/{repo_name}/git-receive-pack", content=b"0000").status_code in (404, 405)


@needs_git_lfs
def test_private_repo_clone_needs_the_token(git, tmp_path):
    server = start_hub(tmp_path / "root", token="s3cret")
    try:
        owner = HfApi(endpoint=server.endpoint, token="s3cret")
        owner.create_repo("org/private", private=True)
        weights = os.urandom(30_000)
        upload_files(owner, "org/private", "model", {"weights.safetensors": weights})
        anonymous = git("clone", "-q", f"{server.endpoint}/org/private", "anonymous", check=False)
        assert anonymous.returncode != 0 and not (tmp_path / "anonymous").exists()
        wrong = git("clone", "-q", server.endpoint.replace("://", "://user:wrong@") + "/org/private", "w", check=False)
        assert wrong.returncode != 0
        git("clone", "-q", server.endpoint.replace("://", "://user:s3cret@") + "/org/private", "clone")
        assert (tmp_path / "clone" / "weights.safetensors").read_bytes() == weights
    finally:
        server.stop()
