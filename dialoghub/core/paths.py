"""The one base directory everything local lives under (venv aside): hub storage, caches, converted models, runs."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def base_dir() -> Path:
    """`$DIALOGHUB_BASE_DIR`, or `.dialoghub/` in the checkout."""
    return Path(os.environ.get("DIALOGHUB_BASE_DIR") or REPO_ROOT / ".dialoghub").resolve()


def hub_root() -> Path:
    """Where the embedded Hub keeps its git repos and LFS objects."""
    return base_dir() / "hub"


def shared_data_dir() -> Path:
    """`../shared/data` beside the checkout, overridable with `$DIALOGHUB_SHARED_DATA`."""
    return Path(os.environ.get("DIALOGHUB_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data").resolve()


def project_org() -> str:
    """The Hub namespace our own artifacts are published under (`org/tweetsumm-clean`, ...)."""
    return os.environ.get("DIALOGHUB_ORG", "org")
