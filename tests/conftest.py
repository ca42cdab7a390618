"""Test session set-up: a real embedded Hub on a free loopback port, and an isolated HF cache.

The environment is set here, at import, because the HF libraries read it when test modules import them.
"""

import os
import re
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from dialoghub.hub.client import isolate_hf_environment, start_hub

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="dialoghub-tests-"))
_HUB_PORT = urlparse(isolate_hf_environment(_SESSION_DIR)).port
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def hub():
    """The real embedded Hub server, running for the whole session."""
    server = start_hub(_SESSION_DIR / "hub", port=_HUB_PORT)
    yield server
    server.stop()


@pytest.fixture
def hub_api(hub):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.endpoint)


@pytest.fixture
def repo_name(request):
    """A repo id no other test uses: `tests/<test name>-<random>`."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:40].strip("-_")
    return f"tests/{slug}-{uuid.uuid4().hex[:8]}"


def _bare_repos_changed_since(root: Path, since: float) -> list[Path]:
    """The Hub's bare repos under root (at any depth) with a file written since `since`."""
    changed = []
    for head in root.rglob("*.git/HEAD"):
        repo = head.parent
        if any(path.stat().st_mtime >= since for path in repo.rglob("*") if path.is_file()):
            changed.append(repo)
    return changed


@pytest.fixture(autouse=True)
def hub_repos_pass_git_fsck(request):
    """After each hub test, `git fsck --strict` every repo it wrote, in the session Hub and in its own servers."""
    if not request.module.__name__.rpartition(".")[2].startswith("test_hub_"):
        yield
        return
    roots = [_SESSION_DIR / "hub"]
    if "tmp_path" in request.fixturenames:  # asked for now, so that it is torn down after this check
        roots.append(request.getfixturevalue("tmp_path"))
    started = time.time() - 1  # mtimes can be coarser than time.time()
    yield
    failures = []
    for root in roots:
        for repo in _bare_repos_changed_since(root, started):
            fsck = subprocess.run(["git", "fsck", "--full", "--strict"], cwd=repo, capture_output=True, text=True)
            if fsck.returncode != 0:
                failures.append(f"{repo}: {fsck.stdout}{fsck.stderr}")
    assert not failures, "\n".join(failures)
