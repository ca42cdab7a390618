"""Small file helpers: hashing for provenance, and writes that never leave a half-written file behind."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path


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
