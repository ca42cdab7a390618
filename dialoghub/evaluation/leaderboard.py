"""The leaderboard: evaluate a model (with an optional LoRA adapter), a baseline or the human ceiling on a task, push
the record and its per-sample details to the results dataset repo, and show the ranked leaderboard from that repo.

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
or a
flag; see `eval --help`. `update_card` writes the headline metrics as `model-index` into the adapter's card, as a
new commit on its repo, with `.eval_results/<task>.yaml` (`dialoghub.evaluation.benchmark`) and the paired comparison
with
the base model. `submit` opens those as pull requests instead (`dialoghub.evaluation.submissions`); `verify` re-runs a
submitted
evaluation and merges it when it reproduces. `show` ranks from the benchmark's `get_dataset_leaderboard` when the
dataset has an `eval.yaml`, else from the results repo alone.
"""

import dialoghub.core.hubenv  # noqa: F401

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError

from dialoghub.core.files import atomic_write
from dialoghub.core.paths import base_dir
from dialoghub.core.recipes import configure_logging, parse_recipe
from dialoghub.evaluation import benchmark, comparisons, results, submissions
from dialoghub.evaluation.model_card import update_model_card
from dialoghub.evaluation.provenance import repo_record
from dialoghub.evaluation.run import Evaluation, EvaluationConfig, evaluate
from dialoghub.evaluation.tasks import TASKS, get_task
from dialoghub.hub.client.embedded import hub_session

logger = logging.getLogger(__name__)

PROG = "python -m evaluation.leaderboard"


@dataclass
class ShowArguments:
    """The ranked leaderboard, read from the results repo alone."""

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


def default_benchmark_dataset() -> str:
    return get_task(next(iter(TASKS))).dataset_id


def default_output_dir() -> Path:
    return base_dir() / "evaluations"


def write_local(evaluation: Evaluation, output_dir: str | Path) -> tuple[Path, Path]:
    """The record and the details parquet under `output_dir`, at the paths they have in the results repo."""
    results_path, details_path = results.record_paths(evaluation.record)
    output_dir = Path(output_dir)
    record = evaluation.record | {"details_file": details_path}
    atomic_write(output_dir / details_path, results.details_parquet(evaluation.details))
    atomic_write(output_dir / results_path, results.record_json(record))
    return output_dir / results_path, output_dir / details_path


def results_url(repo_id: str, commit: str, path: str) -> str:
    return f"{constants.ENDPOINT}/datasets/{repo_id}/blob/{commit}/{path}"


def parent_sha(compare_with: str | None) -> str | None:
    """The commit of the parent adapter (`ID@REV`) a card compares with, besides the base model."""
    return repo_record(compare_with)["sha"] if compare_with else None


def comparison_sections(evaluation: Evaluation, results_repo: str, compare_with: str | None) -> list:
    """The card's paired-comparison section (with the base model, and with `compare_with`), if the parents' rows
    are in the results repo."""
    section = comparisons.comparison_section(
        evaluation.record, evaluation.details, results_repo, parent_sha(compare_with)
    )
    return [section] if section else []


def push(
    evaluation: Evaluation, results_repo: str | None = None, update_card: bool = False, compare_with: str | None = None
) -> str:
    """Push the record and its details to the results repo (and the metrics into the adapter's card with
    `update_card`). Returns the results repo commit sha."""
    from huggingface_hub import CommitOperationAdd

    repo_id = results_repo or results.default_results_repo()
    commit = results.push_record(evaluation.record, evaluation.details, repo_id)
    if update_card:
        record = evaluation.record
        results_path, _ = results.record_paths(record)
        source = results_url(repo_id, commit, results_path)
        operations = []
        if (reason := benchmark.benchmark_mismatch(record)) is None:
            entries = benchmark.eval_result_entries(record, source)
            operations.append(
                CommitOperationAdd(benchmark.eval_results_path(record), benchmark.eval_results_bytes(entries))
            )
        else:
            logger.warning("no %s file: %s", benchmark.EVAL_RESULTS_FOLDER, reason)
        sections = comparison_sections(evaluation, repo_id, compare_with)
        card_commit = update_model_card(record, source, extra_operations=operations, card_sections=sections)
        logger.info("%s: model-index and eval results in commit %s", record["system"]["adapter_id"], card_commit)
    return commit


def submit(
    evaluation: Evaluation, results_repo: str | None = None, compare_with: str | None = None
) -> submissions.Submission:
    """Open the results and model pull requests of an evaluation (`dialoghub.evaluation.submissions.submit`)."""
    repo_id = results_repo or results.default_results_repo()
    return submissions.submit(
        evaluation, repo_id, card_sections=comparison_sections(evaluation, repo_id, compare_with)
    )


def evaluate_and_push(config: EvaluationConfig) -> str:
    """Evaluate, write the files locally, push them as `config` says. Returns the results repo commit sha."""
    evaluation = evaluate(config)
    write_local(evaluation, config.output_dir or default_output_dir())
    return push(evaluation, config.results_repo, config.update_card, config.compare_with)


def render_leaderboard(
    results_repo: str | None = None,
    revision: str | None = None,
    task: str | None = None,
    output_dir: str | Path | None = None,
    dataset: str | None = None,
    sort_by: str | None = None,
) -> tuple[str, Path]:
    """The ranked leaderboard: markdown, and the path of the PNG bar chart written. With a benchmark dataset (an
    `eval.yaml`), the Hub's `get_dataset_leaderboard` ranks the rows and the records their sources cite give the
    details; else the results repo alone does. `sort_by` reorders the rows by another metric (best first)."""
    dataset = dataset or default_benchmark_dataset()
    sha = revision or "main"
    if revision is None and benchmark.has_benchmark(dataset):
        groups = benchmark.hub_groups(dataset, results_repo or results.default_results_repo(), task)
    else:
        records, sha = results.load_records(results_repo, revision)
        groups = results.leaderboard_groups(records, task)
    if sort_by is not None:
        sortable = [sort_by in get_task(group.task).leaderboard_metrics for group in groups]
        if groups and not any(sortable):
            raise ValueError(f"no task shown has the metric {sort_by!r}")
        groups = [
            results.sorted_by(group, sort_by) if ok else group for group, ok in zip(groups, sortable, strict=True)
        ]
    if not groups:
        raise results.ResultsRepoError(f"{results_repo or results.default_results_repo()}@{sha} has no results"
                                       + (f" for {task}" if task else ""))  # fmt: skip
    output_dir = Path(output_dir or base_dir() / "leaderboard")
    chart = results.bar_chart(groups, output_dir / results.CHART_FILE)
    return results.markdown_leaderboard(groups), chart


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


def parse_args(argv: Sequence[str] | None = None) -> tuple[str, EvaluationConfig | ShowArguments]:
    """(command, its config) from `COMMAND [--config RECIPE.yaml] [--field value ...]`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        usage = "\n".join(f"  {name:<6} {description}" for name, (_, description) in COMMANDS.items())
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


def run(command: str, config: EvaluationConfig | ShowArguments) -> None:
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
    if config.submit:
        submission = submit(evaluation, config.results_repo, config.compare_with)
        print(
            f"submitted: {submission.model_repo} pull request #{submission.model_pr} "
            f"({submission.eval_results_file}), {submission.results_repo} pull request #{submission.results_pr}"
        )
    elif config.push:
        repo_id = config.results_repo or results.default_results_repo()
        commit = push(evaluation, repo_id, config.update_card, config.compare_with)
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
