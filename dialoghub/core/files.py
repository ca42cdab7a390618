"""Files and where they came from: writes that never leave a half-written file behind, content hashes, and what
produced an artifact, recorded the same way by every stage: the checkout's commit and its uncommitted changes (`git`,
`code_version`), and the versions of the libraries that ran (`package_versions`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dialoghub.core.paths import REPO_ROOT


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_figure(figure, path: Path, **savefig_kwargs) -> Path:
    """A matplotlib figure written as a PNG with `atomic_write`, and closed."""
    import matplotlib.pyplot as plt  # lazy: only the stages that plot pay for matplotlib

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig_kwargs)
    plt.close(figure)
    atomic_write(Path(path), buffer.getvalue())
    return Path(path)


def git(*args: str) -> str | None:
    """`git args...` in the checkout, its output stripped; None outside a git checkout (an installed package)."""
    try:
        completed = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return completed.stdout.strip()


def code_version(paths: Sequence[str]) -> dict[str, Any]:
    """The last commit that changed `paths` (relative to the checkout), and whether they have uncommitted changes
    (`dirty` is True when git cannot tell)."""
    status = git("status", "--porcelain", "--", *paths)
    return {"commit": git("log", "-1", "--format=%H", "--", *paths) or None, "dirty": status is None or bool(status)}


def package_versions(packages: Iterable[str]) -> dict[str, str | None]:
    """Python's version and each installed distribution's (None when it is not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions
