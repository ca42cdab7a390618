"""The resumable store of a generation run: one JSONL shard per generated batch, each written atomically.

A run's batches are fixed in advance (`split`, `chunk` number -> the same candidates, the same seed), so a shard is
either complete on disk or absent: a restart skips the chunks that have a shard and regenerates only the rest. A
`kill -9` loses at most the batch in flight, and no row can be written twice. `run.json` holds everything that
determined the rows; a store refuses to mix rows of two different runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from dialoghub.core.files import atomic_write

RUN_FILE = "run.json"
SHARDS_DIR = "shards"
_SHARD_NAME = re.compile(r"^(?P<split>[A-Za-z0-9_.-]+)-(?P<chunk>\d{6})\.jsonl$")


class RunMismatchError(RuntimeError):
    """The work directory holds the shards of a run with other settings."""


def run_key(run_config: dict) -> str:
    """A digest of the run's settings: the same settings give the same work directory."""
    return hashlib.sha256(json.dumps(run_config, sort_keys=True).encode("utf-8")).hexdigest()[:16]


class ShardStore:
    def __init__(self, directory: str | Path, run_config: dict) -> None:
        self.directory = Path(directory)
        self.run_config = json.loads(json.dumps(run_config, sort_keys=True))
        run_file = self.directory / RUN_FILE
        if run_file.is_file():
            stored = json.loads(run_file.read_text(encoding="utf-8"))
            if stored != self.run_config:
                changed = sorted(key for key in stored.keys() | self.run_config.keys()
                                 if stored.get(key) != self.run_config.get(key))  # fmt: skip
                raise RunMismatchError(
                    f"{self.directory} holds a run with other settings (differing: {', '.join(changed)}). "
                    "Use another work directory, or delete this one to start over."
                )
        else:
            atomic_write(run_file, (json.dumps(self.run_config, indent=2, sort_keys=True) + "\n").encode("utf-8"))
        (self.directory / SHARDS_DIR).mkdir(parents=True, exist_ok=True)
        # A write killed before its rename leaves its temporary file; the chunk is redone, so the file can go.
        for leftover in (self.directory / SHARDS_DIR).glob(".*.tmp"):
            leftover.unlink(missing_ok=True)

    def path(self, split: str, chunk: int) -> Path:
        return self.directory / SHARDS_DIR / f"{split}-{chunk:06d}.jsonl"

    def has(self, split: str, chunk: int) -> bool:
        return self.path(split, chunk).is_file()

    def write(self, split: str, chunk: int, rows: list[dict]) -> None:
        if self.has(split, chunk):
            raise FileExistsError(f"{self.path(split, chunk)} exists: chunk {chunk} of {split} was already generated")
        lines = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
        atomic_write(self.path(split, chunk), lines.encode("utf-8"))

    def read(self, split: str, chunk: int) -> list[dict]:
        path = self.path(split, chunk)
        rows = []
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                message = f"{path}:{line_number}: not a JSON row ({error}); delete the file to redo its chunk"
                raise ValueError(message) from error
        return rows

    def chunks(self) -> dict[str, list[int]]:
        """The chunks on disk, by split."""
        found: dict[str, list[int]] = {}
        for path in sorted((self.directory / SHARDS_DIR).glob("*.jsonl")):
            if match := _SHARD_NAME.match(path.name):
                found.setdefault(match["split"], []).append(int(match["chunk"]))
        return found
