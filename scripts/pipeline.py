"""The whole dialoghub job (`make pipeline`): the stages of scripts/pipeline.yaml, in order, each a list of entry
point commands with their recipes, run as child processes exactly as the stage log prints them.

    python scripts/pipeline.py --config scripts/pipeline.yaml [--run data eval]

With HF_ENDPOINT unset, this starts the embedded Hub on 127.0.0.1:8765 (or reuses `make hub`) with its repos under
$DIALOGHUB_BASE_DIR/hub, and the stages use it. A failing command stops the pipeline, naming the stage, the exit code
and the end of its stderr. The embedded Hub and a running stage are stopped on every way out (SIGINT and SIGTERM
included). The summary gives each stage's wall time and peak RSS (its largest process, child processes included).
"""

import dialoghub.core.hubenv  # noqa: F401

import collections
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from dialoghub.core.paths import REPO_ROOT, base_dir
from dialoghub.core.processes import GroupProcess
from dialoghub.core.recipes import parse_recipe
from dialoghub.hub.client import hub_session

STDERR_TAIL_LINES = 20


@dataclass
class Stage:
    description: str
    commands: list[str]
    """Entry points with their arguments; `{base_dir}` is replaced by $DIALOGHUB_BASE_DIR."""

    def argv(self) -> list[list[str]]:
        return [[sys.executable, *shlex.split(command.format(base_dir=base_dir()))] for command in self.commands]


@dataclass
class PipelineArguments:
    """Which stages to run, and what each runs."""

    run: list[str] = field(default_factory=list, metadata={"help": "The stages to run, in the pipeline's order."})
    stages: dict[str, dict] = field(default_factory=dict, metadata={"help": "Stage name -> description, commands."})

    def selected(self) -> list[tuple[str, Stage]]:
        """The stages of `run`, in the order the recipe lists them; a `ValueError` for an unknown name or field."""
        if not self.stages:
            raise ValueError("no stages: give --config scripts/pipeline.yaml")
        if unknown := sorted(set(self.run) - set(self.stages)):
            raise ValueError(f"unknown stage(s) {unknown}; the recipe has {list(self.stages)}")
        selected = []
        for name, values in self.stages.items():
            try:
                stage = Stage(**values)
            except TypeError as error:
                raise ValueError(f"stage {name!r}: {error}") from error
            if name in self.run:
                selected.append((name, stage))
        return selected


class StageFailed(RuntimeError):
    def __init__(self, stage: str, command: list[str], returncode: int, stderr_tail: str) -> None:
        super().__init__(f"stage {stage!r} failed: exit code {returncode} from {shlex.join(command)}")
        self.stage, self.returncode, self.stderr_tail = stage, returncode, stderr_tail


@dataclass
class CommandRun:
    returncode: int
    wall_time_s: float
    peak_rss_kib: int
    stderr_tail: str


def _tee(source, sink, tail: collections.deque) -> None:
    """Copy the child's stderr through as it comes (progress bars included), keeping its last lines."""
    pending = b""
    while chunk := os.read(source.fileno(), 65536):
        sink.write(chunk)
        sink.flush()
        pending += chunk
        *lines, pending = pending.split(b"\n")
        tail.extend(lines)
    if pending:
        tail.append(pending)


def run_command(command: list[str]) -> CommandRun:
    """Run one entry point to its end, stderr passed through, in a `GroupProcess`: ended with whatever it started
    however this process stops."""
    started = time.perf_counter()
    tail: collections.deque = collections.deque(maxlen=STDERR_TAIL_LINES)
    with GroupProcess(command, cwd=REPO_ROOT, stderr=subprocess.PIPE) as process:
        reader = threading.Thread(target=_tee, args=(process.stderr, sys.stderr.buffer, tail), daemon=True)
        reader.start()
        # wait4, not wait: its resource usage is the child's, with the largest RSS of its own waited-for children
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        reader.join()
    return CommandRun(
        returncode=process.returncode,
        wall_time_s=time.perf_counter() - started,
        peak_rss_kib=usage.ru_maxrss,
        stderr_tail=b"\n".join(tail).decode("utf-8", "replace"),
    )


def summary_table(rows: list[tuple[str, str, float, int]]) -> str:
    lines = [f"{'stage':<8} {'result':<10} {'wall time':>10} {'peak RSS':>10}"]
    for name, result, seconds, peak_kib in rows:
        lines.append(f"{name:<8} {result:<10} {seconds:>9.1f}s {peak_kib / 1024:>7.0f} MiB")
    return "\n".join(lines)


def _exit_on_signal(signum, frame) -> None:
    # `dialoghub.core.processes` has ended the running stage and the embedded Hub by now; unwinding like Ctrl-C does
    # reports the stop and runs every `finally`.
    raise SystemExit(128 + signum)


def run_pipeline(stages: list[tuple[str, Stage]]) -> int:
    rows: list[tuple[str, str, float, int]] = []
    started = time.perf_counter()
    try:
        with hub_session() as hub:
            print(f"Hub: {hub.endpoint}", flush=True)
            for name, stage in stages:
                print(f"\n=== {name}: {stage.description}", flush=True)
                seconds, peak_kib = 0.0, 0
                for command in stage.argv():
                    print(f"$ {shlex.join(command)}", flush=True)
                    result = run_command(command)
                    seconds, peak_kib = seconds + result.wall_time_s, max(peak_kib, result.peak_rss_kib)
                    if result.returncode != 0:
                        rows.append((name, "failed", seconds, peak_kib))
                        raise StageFailed(name, command, result.returncode, result.stderr_tail)
                rows.append((name, "ok", seconds, peak_kib))
            where = hub.root or hub.endpoint
    except StageFailed as failure:
        print(f"\n{summary_table(rows)}", flush=True)
        print(f"\npipeline stopped: {failure}\n--- last stderr lines ---\n{failure.stderr_tail}", file=sys.stderr)
        return 1
    print(f"\n{summary_table(rows)}")
    print(f"\nPipeline done in {time.perf_counter() - started:.0f}s; the Hub's repos are under {where}")
    return 0


def parse_args(argv: list[str] | None = None) -> PipelineArguments:
    return parse_recipe(PipelineArguments, argv, prog="scripts/pipeline.py", description=__doc__)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        stages = parse_args(argv).selected()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return run_pipeline(stages)


if __name__ == "__main__":
    sys.exit(main())
