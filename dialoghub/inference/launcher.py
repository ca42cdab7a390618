"""`make hub`: the embedded Hub and the inference server its model pages call, started together and stopped together.

Both run as child processes (`dialoghub.core.processes.GroupProcess`), so Ctrl-C, SIGTERM, SIGHUP or the exit of
either one ends both; nothing is left running.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx

from dialoghub.core.processes import GroupProcess
from dialoghub.hub.client import EmbeddedHub, start_hub

STARTUP_TIMEOUT_S = 180.0
POLL_S = 0.2


def start_inference_server(hub: EmbeddedHub, host: str, port: int, extra_args: tuple[str, ...] = ()) -> GroupProcess:
    """`python -m dialoghub.inference serve` reading models from `hub`, callable from its pages; waits until up."""
    command = [sys.executable, "-m", "dialoghub.inference", "serve", "--host", host, "--port", str(port)]
    command += ["--allow-origin", hub.endpoint, *extra_args]
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint}
    if hub.token:
        env["HF_TOKEN"] = hub.token  # to load the private repos too
    process = GroupProcess(command, grace=10, env=env, cwd=Path(__file__).resolve().parents[2])
    url = f"http://{host}:{port}/health"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            process.end()
            raise RuntimeError(f"The inference server exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.end()
            raise TimeoutError(f"The inference server did not answer on {url} within {STARTUP_TIMEOUT_S:.0f}s")
        time.sleep(POLL_S)


def serve_hub_with_inference(root: str | Path, host: str, hub_port: int, port: int) -> int:
    """Run both until either exits or this process is stopped; returns the exit code of the one that exited."""
    inference_url = f"http://{host}:{port}"
    hub = start_hub(
        root, port=hub_port, host=host, token=os.environ.get("DIALOGHUB_HUB_TOKEN"),
        extra_args=("--inference-url", inference_url),
    )  # fmt: skip
    inference = None
    try:
        print(f"Hub on {hub.endpoint} (pid {hub.process.pid}, log {Path(root) / 'server.log'})", flush=True)
        inference = start_inference_server(hub, host, port)
        print(f"Inference server on {inference_url} (pid {inference.pid})", flush=True)
        print(f"Open {hub.endpoint}/ in a browser; Ctrl-C stops both.", flush=True)
        while hub.process.poll() is None and inference.poll() is None:
            time.sleep(POLL_S)
        return hub.process.returncode if hub.process.returncode is not None else inference.returncode
    except KeyboardInterrupt:
        return 130
    finally:
        if inference is not None:
            inference.end()
        hub.stop()
