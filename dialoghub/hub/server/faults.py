"""Deterministic crash points for the kill-and-retry tests.

A server started with `DIALOGHUB_HUB_FAULTS=1` honours the request header `X-Dialoghub-Kill-At: N`: it SIGKILLs
itself just before the N-th file-system write under its root made while serving requests with that header (an open
for writing, rename, unlink or mkdir, as Python's audit events report them). Every step of an upload is such a
write, including the instant between dulwich creating a `.lock` file and renaming it into place, so sending one
upload with N = 1, 2, 3, ... kills the server at each point of the commit path in turn, without hoping that a timed
kill lands somewhere interesting. Without the variable, nothing is installed and the header means nothing.
"""

import contextvars
import itertools
import os
import signal
import sys
import threading
from pathlib import Path

FAULTS_ENV = "DIALOGHUB_HUB_FAULTS"
KILL_AT_HEADER = "x-dialoghub-kill-at"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_WRITE_EVENTS = {"os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree"}
_kill_at: contextvars.ContextVar[int | None] = contextvars.ContextVar("kill_at", default=None)


def _is_write(event: str, args: tuple) -> bool:
    if event == "open":
        _path, mode, flags = args
        return bool(set(mode or "") & set("wax+")) if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
    return event in _WRITE_EVENTS


class _KillAtHeader:
    """ASGI middleware: requests carrying the header count their writes (the context follows them into threads)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        value = dict(scope.get("headers", [])).get(KILL_AT_HEADER.encode()) if scope["type"] == "http" else None
        token = _kill_at.set(int(value) if value and value.isdigit() else None)
        try:
            return await self.app(scope, receive, send)
        finally:
            _kill_at.reset(token)


def install_fault_injection(app, root: Path) -> None:
    """Arm the kill switch if the environment asks for it; a no-op otherwise."""
    if os.environ.get(FAULTS_ENV) != "1":
        return
    prefix = str(Path(root).resolve())
    writes = itertools.count(1)
    guard = threading.Lock()

    def hook(event: str, args: tuple) -> None:
        target = _kill_at.get()
        if target is None or not _is_write(event, args) or not isinstance(args[0], str | bytes | os.PathLike):
            return
        path = os.fsdecode(args[0])
        if not path.startswith(prefix):
            return
        with guard:
            if next(writes) == target:
                sys.stderr.write(f"{KILL_AT_HEADER}: {target}: killed before {event} {path}\n")
                sys.stderr.flush()
                os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    app.add_middleware(_KillAtHeader)
