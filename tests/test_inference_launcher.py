"""`make hub` (`python -m dialoghub.inference with-hub`): the Hub and the inference server start together, the Hub's
pages point at the inference server, and a signal to the launcher stops both."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dialoghub.hub.client import free_loopback_port, hub_is_up
from tests.test_processes import INTERACTIVE_SIGNALS

REPO_ROOT = Path(__file__).resolve().parents[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_make_hub_starts_both_servers_and_a_signal_stops_both(tmp_path, stop_signal):
    hub_port, inference_port = free_loopback_port(), free_loopback_port()
    log = tmp_path / "launcher.log"
    # `python -m dialoghub.inference with-hub` (make hub) as a terminal starts it: with Python's SIGINT handler
    make_hub = 'import runpy; runpy.run_module("dialoghub.inference", run_name="__main__", alter_sys=True)'
    command = [sys.executable, "-c", INTERACTIVE_SIGNALS + make_hub, "with-hub", "--root", str(tmp_path / "root")]
    command += ["--hub-port", str(hub_port), "--port", str(inference_port)]
    with open(log, "wb") as output:
        launcher = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    children: list[int] = []
    try:
        for _ in range(3000):  # bounded: the inference server imports torch before it answers
            children = [int(pid) for pid in re.findall(r"\(pid (\d+)", log.read_text())]
            if len(children) == 2 or launcher.poll() is not None:
                break
            time.sleep(0.1)
        assert len(children) == 2, log.read_text()
        hub = f"http://127.0.0.1:{hub_port}"
        assert hub_is_up(hub)
        assert httpx.get(f"http://127.0.0.1:{inference_port}/health").json() == {"status": "ok"}
        page = httpx.get(f"{hub}/")
        assert (
            page.status_code == 200 and f"http://127.0.0.1:{inference_port}" in page.headers["content-security-policy"]
        )

        launcher.send_signal(stop_signal)
        launcher.wait(timeout=60)
        assert not any(alive(pid) for pid in children)
        assert not hub_is_up(hub, timeout=1)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{inference_port}/health", timeout=1)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for pid in children:  # each child leads a process group of its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
