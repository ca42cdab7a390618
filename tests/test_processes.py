"""Whatever dialoghub starts ends with its starter: the embedded Hub of a `hub_session` when the session's process is
stopped by a signal, and a `processes.run` command with the whole process group it started, on timeout and signal."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from dialoghub.core import processes
from dialoghub.core.paths import REPO_ROOT
from dialoghub.hub.client import hub_is_up

# A program started in the background by a non-interactive shell inherits SIGINT ignored, and one started under
# `nohup` (as CI may be) SIGHUP ignored; a user's terminal program has Python's SIGINT handler and SIGHUP's default.
INTERACTIVE_SIGNALS = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "signal.signal(signal.SIGHUP, signal.SIG_DFL)\n"
)


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def python(code: str, *args: str, **popen_kwargs) -> processes.GroupProcess:
    command = [sys.executable, "-c", INTERACTIVE_SIGNALS + textwrap.dedent(code), *args]
    return processes.GroupProcess(command, cwd=REPO_ROOT, text=True, **popen_kwargs)


def wait_for_file(path, process, deadline_s: float = 120) -> str:
    deadline = time.monotonic() + deadline_s
    while not path.is_file() or not path.read_text().endswith("\n"):
        assert process.poll() is None, f"exited with {process.returncode} before writing {path.name}"
        assert time.monotonic() < deadline, f"no {path.name} after {deadline_s:.0f}s"
        time.sleep(0.05)
    return path.read_text()


HUB_SESSION = """
    import sys, time
    from pathlib import Path
    from dialoghub.hub.client import hub_session, isolate_hf_environment

    isolate_hf_environment(sys.argv[1])
    with hub_session(Path(sys.argv[1]) / "hub") as hub:
        (Path(sys.argv[1]) / "server").write_text(f"{hub.process.pid} {hub.endpoint}\\n")
        time.sleep(600)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_stopped_hub_session_stops_its_server(tmp_path, signum):
    with python(HUB_SESSION, str(tmp_path), stderr=subprocess.PIPE) as session:
        server_pid, endpoint = wait_for_file(tmp_path / "server", session).split()
        assert running(int(server_pid)) and hub_is_up(endpoint)
        session.send_signal(signum)
        _, stderr = session.communicate(timeout=120)
        assert session.returncode == -signum, stderr  # it still dies of the signal, as it would have
        # Checked before the `with` ends the session's process group, which the server would be in otherwise.
        assert not running(int(server_pid)), "the Hub server outlived the session's process"
        assert not hub_is_up(endpoint)


# A shell that starts a child in its group, writes the child's pid to the file named by its first argument, and waits
SHELL_WITH_A_CHILD = ["sh", "-c", 'sleep 600 & echo $! > "$0"; wait']


def test_a_timed_out_run_ends_the_whole_group(tmp_path):
    pid_file = tmp_path / "grandchild"
    with pytest.raises(subprocess.TimeoutExpired):
        processes.run([*SHELL_WITH_A_CHILD, str(pid_file)], timeout=5, grace=5)
    grandchild = int(pid_file.read_text())
    assert not running(grandchild), "the command's own child outlived the timeout"


RUN_A_GROUP = f"""
    import sys
    from dialoghub.core import processes

    processes.run({SHELL_WITH_A_CHILD!r} + [sys.argv[1]])
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_stopped_run_ends_the_group_it_started(tmp_path, signum):
    pid_file = tmp_path / "grandchild"
    with python(RUN_A_GROUP, str(pid_file), stderr=subprocess.PIPE) as starter:
        grandchild = int(wait_for_file(pid_file, starter))
        assert running(grandchild)
        starter.send_signal(signum)
        _, stderr = starter.communicate(timeout=120)
        assert starter.returncode == -signum, stderr
        assert not running(grandchild), "the started command's child outlived its starter"


# Two groups, as `make hub` starts them; the newer one ignores SIGTERM, so ending it takes the grace period.
STARTS_TWO_GROUPS = """
    import subprocess, sys, time
    from pathlib import Path
    from dialoghub.core import processes

    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # not holding the test's pipe open
    first = processes.GroupProcess(["sleep", "600"], grace=3, **quiet)
    stubborn = processes.GroupProcess(["sh", "-c", "trap '' TERM; sleep 600"], grace=3, **quiet)
    Path(sys.argv[1]).write_text(f"{first.pid} {stubborn.pid}\\n")
    time.sleep(600)
"""


def test_a_second_stop_signal_does_not_cut_the_first_ones_cleanup_short(tmp_path):
    """make forwards to its children the SIGTERM its group got: the starter gets it twice, the second while it is
    still ending the first group it started."""
    pid_file = tmp_path / "children"
    with python(STARTS_TWO_GROUPS, str(pid_file), stderr=subprocess.PIPE) as starter:
        children = [int(pid) for pid in wait_for_file(pid_file, starter).split()]
        try:
            assert all(running(pid) for pid in children)
            starter.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # inside the 3 s the stubborn group is given before SIGKILL
            starter.send_signal(signal.SIGTERM)
            _, stderr = starter.communicate(timeout=120)
            assert starter.returncode == -signal.SIGTERM, stderr
            assert not any(running(pid) for pid in children), "a started group outlived its starter"
        finally:  # the groups' own leaders; nothing else is left if the starter failed to end them
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
