"""Start, find and stop the embedded Hub server from Python (pipeline, tests, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from dialoghub.core import hubenv
from dialoghub.core.paths import hub_root
from dialoghub.core.processes import GroupProcess

STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0


@dataclass
class EmbeddedHub:
    endpoint: str
    root: Path | None
    token: str | None = None
    process: GroupProcess | None = field(default=None, repr=False)
    """The server, when this process started it: stopped by `stop()`, or when this process exits or is stopped."""

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        if self.process is not None:
            self.process.end()


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hub_is_up(endpoint: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/api/dialoghub/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def isolate_hf_environment(workdir: str | Path) -> str:
    """Point the (not yet imported) HF libraries at a Hub on a free loopback port, with every cache under workdir.

    Tests and benchmarks call this before importing any HF library, then `start_hub(..., port=...)` on the returned
    endpoint's port; nothing they do touches the user's caches or the embedded default Hub.
    """
    if "huggingface_hub" in sys.modules:
        raise RuntimeError("isolate_hf_environment() must run before any Hugging Face library is imported")
    workdir = Path(workdir)
    endpoint = f"http://127.0.0.1:{free_loopback_port()}"
    os.environ.update(
        HF_ENDPOINT=endpoint,
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HOME=str(workdir / "hf_home"),
        DIALOGHUB_BASE_DIR=str(workdir / "base"),
    )
    for variable in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(variable, None)
    return endpoint


def start_hub(
    root: str | Path,
    port: int | None = None,
    host: str = "127.0.0.1",
    token: str | None = None,
    log_path: str | Path | None = None,
    extra_args: tuple[str, ...] = (),
) -> EmbeddedHub:
    """Run `python -m dialoghub.hub serve` in a child process and wait until it answers.

    The server is stopped by `EmbeddedHub.stop()`, and also when this process exits or is stopped by SIGTERM or
    SIGHUP (`dialoghub.core.processes`), so no way out of the caller leaves it running."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_loopback_port()
    endpoint = f"http://{host}:{port}"
    command = [
        sys.executable,
        "-m",
        "dialoghub.hub",
        "serve",
        "--root",
        str(root),
        "--host",
        host,
        "--port",
        str(port),
    ]
    if token:
        command += ["--token", token]
    command += list(extra_args)
    log = open(log_path or root / "server.log", "ab")  # noqa: SIM115 - handed to the child process
    process = GroupProcess(
        command, grace=STOP_GRACE_S, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[3]
    )
    log.close()
    hub = EmbeddedHub(endpoint=endpoint, root=root, token=token, process=process)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not hub_is_up(endpoint, timeout=0.5):
        if process.poll() is not None:
            hub.stop()
            raise RuntimeError(f"The embedded Hub exited with code {process.returncode}; see {log.name}")
        if time.monotonic() > deadline:
            hub.stop()
            raise TimeoutError(f"The embedded Hub did not answer on {endpoint} within {STARTUP_TIMEOUT_S:.0f}s")
        time.sleep(0.1)
    return hub


def _check_hf_libraries_agree(endpoint: str) -> None:
    if "huggingface_hub" not in sys.modules:
        return
    from huggingface_hub import constants  # imported already or not, its ENDPOINT was fixed at first import

    imported_endpoint = constants.ENDPOINT.rstrip("/")
    if imported_endpoint != endpoint.rstrip("/"):
        raise RuntimeError(
            f"huggingface_hub was imported with HF_ENDPOINT={imported_endpoint}, but the Hub is {endpoint}. "
            "Import dialoghub.core.hubenv before any Hugging Face library, or set HF_ENDPOINT before starting Python."
        )


@contextlib.contextmanager
def hub_session(root: str | Path | None = None) -> Iterator[EmbeddedHub]:
    """Use the Hub that `HF_ENDPOINT` names, starting the embedded default when nothing answers there.

    A remote endpoint (huggingface.co) is used as is. A loopback endpoint that already answers (`make hub` in another
    terminal) is reused and left running. Otherwise the embedded Hub is started on that port with its repos under
    `root` (default: `$DIALOGHUB_BASE_DIR/hub`) and stopped when the block ends, however it ends (see `start_hub`).
    """
    endpoint = hubenv.endpoint()
    _check_hf_libraries_agree(endpoint)
    parsed = urlparse(endpoint)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1") or hub_is_up(endpoint):
        yield EmbeddedHub(endpoint=endpoint, root=None)
        return
    hub = start_hub(
        root or hub_root(), port=parsed.port, host=parsed.hostname, token=os.environ.get("DIALOGHUB_HUB_TOKEN")
    )
    try:
        yield hub
    finally:
        hub.stop()
