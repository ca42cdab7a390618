"""Child processes that end with the code that started them, on every way out.

Each child runs in its own process group, so it and whatever it starts in that group can be ended together. It is
ended when the starter is done with it, on an exception or timeout, when this process exits, and when this process is
stopped by SIGTERM or SIGHUP, whose default action would otherwise kill it without running any `finally` (Ctrl-C
raises `KeyboardInterrupt`, which does). Ending is polite first: SIGTERM to the group, so that a launcher such as
torchrun can stop the workers it started in sessions of their own, then SIGKILL after a grace period.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger(__name__)

END_GRACE_S = 30.0
"""How long a process group has to exit after SIGTERM before it is killed (torchrun gives its workers 30 s)."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

_cleanups: dict[int, Callable[[], None]] = {}
_keys = itertools.count()
_previous_handlers: dict[int, Any] = {}
_stopping = False
_lock = threading.Lock()


def _run_cleanups() -> None:
    for key in sorted(_cleanups, reverse=True):  # the newest first, like nested `with` blocks
        cleanup = _cleanups.pop(key, None)
        if cleanup is not None:
            cleanup()


def _on_stop_signal(signum: int, frame) -> None:
    global _stopping
    # A second stop signal would run this handler again inside the first one's cleanups and end the process before
    # they finish (make forwards to its children the SIGTERM that its process group got): the first one runs them all.
    if _stopping:
        return
    _stopping = True
    _run_cleanups()
    previous = _previous_handlers[signum]
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)  # and die of it, as this process would have without the cleanups


def _install_handlers() -> None:
    with _lock:
        if _previous_handlers:
            return
        atexit.register(_run_cleanups)
        if threading.current_thread() is not threading.main_thread():
            logger.warning("children started outside the main thread are not ended on SIGTERM or SIGHUP")
            return
        for signum in STOP_SIGNALS:
            previous = signal.getsignal(signum)
            if previous != signal.SIG_IGN:
                _previous_handlers[signum] = signal.signal(signum, _on_stop_signal)


def end_with_this_process(cleanup: Callable[[], None]) -> Callable[[], None]:
    """Run `cleanup` if this process exits, or is stopped by SIGTERM or SIGHUP, before the returned `forget()`."""
    _install_handlers()
    key = next(_keys)
    _cleanups[key] = cleanup

    def forget() -> None:
        _cleanups.pop(key, None)

    return forget


class GroupProcess(subprocess.Popen):
    """`subprocess.Popen` in a process group of its own, which `end()` ends, as do leaving its `with` block, this
    process exiting, and this process being stopped by SIGTERM or SIGHUP."""

    def __init__(self, command: Sequence[str], *, grace: float = END_GRACE_S, **popen_kwargs):
        super().__init__(command, start_new_session=True, **popen_kwargs)
        self.grace = grace
        self._forget = end_with_this_process(self._end_on_the_way_out)

    def __exit__(self, *exc_info):
        self.end()  # unlike Popen's, which waits for the process however long it runs
        return super().__exit__(*exc_info)

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(self.pid, signum)

    def end(self) -> None:
        """SIGTERM the group, SIGKILL it if the leader is still there after `grace` seconds, and reap the leader.
        Members still left in the group once the leader has exited are killed too, and waited for: when this returns,
        nothing of the group runs any more."""
        if self._forget is None:
            return
        forget, self._forget = self._forget, None
        if self.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                logger.warning("process %d did not stop %.0fs after SIGTERM; killing its group", self.pid, self.grace)
                self._signal_group(signal.SIGKILL)
                self.wait()
        self._signal_group(signal.SIGKILL)
        self._wait_for_the_group(self.grace)
        forget()

    def _wait_for_the_group(self, timeout: float) -> None:
        """Wait until no member of the group is alive (a signal is delivered, not acted on, when `kill` returns)."""
        import psutil  # lazy: only ending a group needs it (a dependency of accelerate, peft and trl)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            members = []
            for member in psutil.process_iter():
                with contextlib.suppress(psutil.Error, ProcessLookupError):
                    if os.getpgid(member.pid) == self.pid and member.status() != psutil.STATUS_ZOMBIE:
                        members.append(member)
            if not members:
                return
            time.sleep(0.02)
        logger.warning("members of process group %d still run %.0fs after SIGKILL", self.pid, timeout)

    def _end_on_the_way_out(self) -> None:
        """`end()` for the exit and signal handlers. A handler can interrupt this object's own `wait()`, which holds
        a lock that a second `wait()` would wait for forever, so this waits with `os.waitpid`."""
        self._forget = None
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline:
            try:
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:
                break  # reaped already
            time.sleep(0.05)
        self._signal_group(signal.SIGKILL)


def run(
    command: Sequence[str],
    *,
    timeout: float | None = None,
    input=None,
    check: bool = False,
    grace: float = END_GRACE_S,
    **popen_kwargs,
) -> subprocess.CompletedProcess:
    """Like `subprocess.run` (same arguments), in a `GroupProcess`, ended however the call ends: after
    the command exits (stragglers it left in its group), on timeout (`subprocess.TimeoutExpired`, as `subprocess.run`
    raises), on any exception, and when this process is stopped."""
    if input is not None:
        popen_kwargs["stdin"] = subprocess.PIPE
    if popen_kwargs.pop("capture_output", False):
        popen_kwargs |= {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with GroupProcess(command, grace=grace, **popen_kwargs) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            process.end()
            # What it wrote before it was ended; a grandchild that escaped the group could hold the pipes open
            with contextlib.suppress(subprocess.TimeoutExpired):
                error.output, error.stderr = process.communicate(timeout=grace)
            raise
    completed = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if check:
        completed.check_returncode()
    return completed
