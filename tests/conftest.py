"""Test session set-up: a real embedded Hub on a free loopback port, and an isolated HF cache.

The environment is set here, at import, because the HF libraries read it when test modules import them.
"""

import os
import re
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from dialoghub.hub.embedded import isolate_hf_environment, start_hub

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
