"""Test session set-up: a real embedded Hub on a free loopback port, and an isolated HF cache.

The environment is set here, at import, because the HF libraries read it when test modules import them.
"""

import os
import re
import tempfile
import uuid
from pathlib import Path

from dialoghub.hub.embedded import free_loopback_port, start_hub

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="dialoghub-tests-"))
_HUB_PORT = free_loopback_port()
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{_HUB_PORT}"
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HOME"] = str(_SESSION_DIR / "hf_home")
os.environ["DIALOGHUB_BASE_DIR"] = str(_SESSION_DIR / "base")
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


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
