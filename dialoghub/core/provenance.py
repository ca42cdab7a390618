"""What produced an artifact, recorded the same way by every stage: the checkout's commit and its uncommitted
changes (`git`, `code_version`), and the versions of the libraries that ran (`package_versions`)."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from collections.abc import Iterable, Sequence
from typing import Any

from dialoghub.core.paths import REPO_ROOT


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
