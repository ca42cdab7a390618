"""Deterministic crash points for the kill-and-retry tests.

With `DIALOGHUB_HUB_KILL_AT=N` in its environment, the server SIGKILLs itself just before its N-th file-system write
under its root after start-up (an open for writing, rename, unlink or mkdir, as Python's audit events report them).
Every step of an upload, including the instant between dulwich creating a `.lock` file and renaming it into place,
is such a write, so stepping N through 1, 2, 3, ... kills the server at each point of the commit path in turn,
without hoping that a timed kill lands somewhere interesting.
"""

import itertools
import os
import signal
import sys
import threading
from pathlib import Path

KILL_AT_ENV = "DIALOGHUB_HUB_KILL_AT"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_WRITE_EVENTS = {"os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree"}


def _is_write(event: str, args: tuple) -> bool:
    if event == "open":
        _path, mode, flags = args
        return bool(set(mode or "") & set("wax+")) if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
    return event in _WRITE_EVENTS


def install_kill_switch(root: Path) -> None:
    """Arm the kill switch if the environment asks for it; a no-op otherwise."""
    target = os.environ.get(KILL_AT_ENV)
    if not target:
        return
    prefix = str(Path(root).resolve())
    counter = itertools.count(1)
    guard = threading.Lock()

    def hook(event: str, args: tuple) -> None:
        if not _is_write(event, args) or not isinstance(args[0], str | bytes | os.PathLike):
            return
        if not os.fsdecode(args[0]).startswith(prefix):
            return
        with guard:
            if next(counter) == int(target):
                sys.stderr.write(f"{KILL_AT_ENV}={target}: killed before {event} {os.fsdecode(args[0])}\n")
                sys.stderr.flush()
                os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
