"""The leaderboard's command line: evaluate a model (with an optional LoRA adapter), a baseline or the human ceiling
on a task, push the record and its per-sample details to the results dataset repo, and show the ranked leaderboard
from that repo. Run from the repository root:

  python -m evaluation.leaderboard eval --config evaluation/recipes/leaderboard.yaml --baseline lead
  python -m evaluation.leaderboard eval --config evaluation/recipes/leaderboard.yaml \
      --adapter org/summarizer-lora@v1.0 --update_card true
  python -m evaluation.leaderboard eval --config evaluation/recipes/leaderboard.yaml --model ID@REV --limit 20 \
      --split validation --push false
  python -m evaluation.leaderboard show [--results_repo org/dialoghub-results]
  python -m evaluation.leaderboard benchmark [--dataset org/tweetsumm-clean]
  python -m evaluation.leaderboard eval --config evaluation/recipes/leaderboard.yaml --adapter ID@REV --submit true
  python -m evaluation.leaderboard verify --repo ID --pr N [--tolerance 0.5]

`eval` takes every field of `dialoghub.evaluation.run.EvaluationConfig` (and its `GenerationSettings`) as a recipe key
or a flag; see `eval --help`. `update_card` writes the headline metrics as `model-index` into the adapter's card, as a
new commit on its repo, with `.eval_results/<task>.yaml` (`dialoghub.evaluation.benchmark`) and the paired comparison
with the base model. `submit` opens those as pull requests instead (`dialoghub.evaluation.submissions`); `verify`
re-runs a submitted evaluation and merges it when it reproduces. `show` ranks from the benchmark's
`get_dataset_leaderboard` when the dataset has an `eval.yaml`, else from the results repo alone. The library behind
these commands is `dialoghub.evaluation.leaderboard`.
"""

import dialoghub.core.hubenv  # noqa: F401

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from huggingface_hub.errors import HfHubHTTPError

from dialoghub.core.recipes import configure_logging, parse_recipe
from dialoghub.evaluation import benchmark, results, submissions
from dialoghub.evaluation.leaderboard import (
    default_benchmark_dataset,
    default_output_dir,
    push,
    render_leaderboard,
    submit,
    write_local,
)
from dialoghub.evaluation.run import Evaluation, EvaluationConfig, evaluate
from dialoghub.evaluation.tasks import TASKS, get_task
from dialoghub.hub.client import hub_session

PROG = "python -m evaluation.leaderboard"


@dataclass
class ShowArguments:
    """The ranked leaderboard: the benchmark's Hub leaderboard when the dataset has an `eval.yaml`, else the
    results repo alone."""

    results_repo: str | None = field(
        default=None, metadata={"help": "Results dataset repo (none: <org>/dialoghub-results)."}
    )
    revision: str | None = field(
        default=None, metadata={"help": "A branch, tag or commit of the results repo (none: main)."}
    )
    task: str | None = field(default=None, metadata={"help": "One task only.", "choices": sorted(TASKS)})
    output_dir: str | None = field(
        default=None, metadata={"help": "PNG folder (none: $DIALOGHUB_BASE_DIR/leaderboard)."}
    )
    dataset: str | None = field(
        default=None,
        metadata={"help": "Benchmark dataset whose Hub leaderboard ranks the rows (none: <org>/tweetsumm-clean)."},
    )
    sort_by: str | None = field(default=None, metadata={"help": "Order rows by this metric (none: the Hub's rank)."})


@dataclass
class BenchmarkArguments:
    """Make a dataset repo a benchmark: commit its `eval.yaml`."""

    dataset: str | None = field(default=None, metadata={"help": "Dataset repo (none: <org>/tweetsumm-clean)."})


@dataclass
class VerifyArguments:
    """A maintainer's verification of a submitted result: re-run it from the recorded revisions, merge if it
    reproduces."""

    repo: str = field(default=None, metadata={"help": "The model repo the pull request is on."})
    pr: int = field(default=None, metadata={"help": "The pull request number."})
    tolerance: float = field(
        default=submissions.DEFAULT_TOLERANCE, metadata={"help": "Largest difference accepted, in points."}
    )
    merge: bool = field(default=True, metadata={"help": "Merge when it reproduces (false: only comment)."})
    threads: int | None = field(default=None, metadata={"help": "Torch CPU threads for the re-run."})
    progress: bool = field(default=False, metadata={"help": "Show progress bars."})


COMMANDS = {
    "eval": (EvaluationConfig, "evaluate one row and push it to the results repo (or submit it as pull requests)"),
    "show": (ShowArguments, "print the ranked leaderboard and write its PNG bar chart"),
    "benchmark": (BenchmarkArguments, "commit the benchmark dataset's eval.yaml"),
    "verify": (VerifyArguments, "re-run a submitted evaluation and merge it when it reproduces"),
}
Arguments = EvaluationConfig | ShowArguments | BenchmarkArguments | VerifyArguments


def summary_lines(evaluation: Evaluation) -> list[str]:
    record = evaluation.record
    task = get_task(record["task"])
    metrics = [
        f"{task.label(metric)} {record['metrics'][metric]['value']:.2f} "
        f"[{record['metrics'][metric]['ci_low']:.2f}, {record['metrics'][metric]['ci_high']:.2f}]"
        for metric in task.leaderboard_metrics
        if metric in record["metrics"]
    ]
    timings = record["wall_time_s"]
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items() if name != "total")
    return [
        f"{record['task']} · {record['system']['label']} · {record['dataset']['id']}@{record['dataset']['sha'][:7]} "
        f"{record['dataset']['split']} ({record['dataset']['n_dialogs']} dialogs, {record['n_samples']} scored)",
        *metrics,
        f"wall time: {timings['total']:.1f} s ({parts})",
    ]


def parse_args(argv: Sequence[str] | None = None) -> tuple[str, Arguments]:
    """(command, its config) from `COMMAND [--config RECIPE.yaml] [--field value ...]`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        usage = "\n".join(f"  {name:<{width}} {description}" for name, (_, description) in COMMANDS.items())
        print(f"usage: {PROG} {{{','.join(COMMANDS)}}} [--config RECIPE.yaml] [--field value ...]\n\n{usage}")
        if argv and argv[0] in ("-h", "--help"):
            raise SystemExit(0)
        raise SystemExit(f"{PROG}: expected a command, one of {list(COMMANDS)}")
    command, config_class = argv[0], COMMANDS[argv[0]][0]
    config = parse_recipe(config_class, argv[1:], prog=f"{PROG} {command}", description=__doc__)
    if command == "eval":
        try:
            config.check_outputs()
        except ValueError as error:
            print(f"{PROG} eval: error: {error}", file=sys.stderr)
            raise SystemExit(2) from error
    return command, config


def run(command: str, config: Arguments) -> None:
    if command == "show":
        markdown, chart = render_leaderboard(
            config.results_repo, config.revision, config.task, config.output_dir, config.dataset, config.sort_by
        )
        print(markdown)
        print(f"\nchart: {chart}")
        return
    if command == "benchmark":
        dataset = config.dataset or default_benchmark_dataset()
        commit = benchmark.publish_benchmark(dataset)
        print(f"{dataset}: {benchmark.BENCHMARK_FILE} " + (f"committed in {commit}" if commit else "is up to date"))
        return
    if command == "verify":
        if config.repo is None or config.pr is None:
            raise ValueError("verify needs --repo and --pr")
        verification = submissions.verify(
            config.repo, config.pr, config.tolerance, merge=config.merge, threads=config.threads,
            progress=config.progress,
        )  # fmt: skip
        print(verification.markdown())
        print("merged" if verification.verified and config.merge else "left open")
        if not verification.verified:
            raise SystemExit(3)
        return
    evaluation = evaluate(config)
    results_path, details_path = write_local(evaluation, config.output_dir or default_output_dir())
    print("\n".join(summary_lines(evaluation)))
    print(f"record: {results_path}\ndetails: {details_path}")
    if evaluation.reused:
        repo_id = config.results_repo or results.default_results_repo()
        print(f"already evaluated: {repo_id} holds {evaluation.record['results_file']}; nothing pushed")
    elif config.submit:
        submission = submit(evaluation, config.results_repo)
        print(
            f"submitted: {submission.model_repo} pull request #{submission.model_pr} "
            f"({submission.eval_results_file}), {submission.results_repo} pull request #{submission.results_pr}"
        )
    elif config.push:
        repo_id = config.results_repo or results.default_results_repo()
        commit = push(evaluation, repo_id, config.update_card)
        print(f"pushed to {repo_id}@{commit}")


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging(logging.WARNING, "dialoghub.evaluation")
    try:
        command, config = parse_args(argv)
        with hub_session():
            run(command, config)
    except (
        ValueError,
        FileNotFoundError,
        results.ResultsRepoError,
        submissions.VerificationError,
        HfHubHTTPError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
