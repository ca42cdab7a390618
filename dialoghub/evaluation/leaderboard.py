"""The leaderboard library: write an evaluation locally, push it to the results dataset repo (and the adapter's card)
or submit it as pull requests, and render the ranked leaderboard. Its command line is `evaluation/leaderboard.py`
(`python -m evaluation.leaderboard`); the Space (`dialoghub.demo`) and `scripts/check_leaderboard.py` use the same
functions.

`push` with `update_card` writes the headline metrics as `model-index` into the adapter's card, as a new commit on its
repo, with `.eval_results/<task>.yaml` (`dialoghub.evaluation.benchmark`) and the paired comparison with the base
model. `submit` opens those as pull requests instead (`dialoghub.evaluation.submissions`). `render_leaderboard` ranks
from the benchmark's `get_dataset_leaderboard` when the dataset has an `eval.yaml`, else from the results repo alone.
"""

import logging
from pathlib import Path

from huggingface_hub import CommitOperationAdd

from dialoghub.core.files import atomic_write
from dialoghub.core.paths import base_dir
from dialoghub.evaluation import benchmark, comparisons, results, submissions
from dialoghub.evaluation.model_card import update_model_card
from dialoghub.evaluation.run import Evaluation, EvaluationConfig, evaluate
from dialoghub.evaluation.submissions import results_url
from dialoghub.evaluation.tasks import TASKS, get_task

logger = logging.getLogger(__name__)


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


def comparison_sections(evaluation: Evaluation, results_repo: str) -> list:
    """The card's paired-comparison section with the base model, if the base model's row is in the results repo."""
    section = comparisons.comparison_section(evaluation.record, evaluation.details, results_repo)
    return [section] if section else []


def push(evaluation: Evaluation, results_repo: str | None = None, update_card: bool = False) -> str:
    """Push the record and its details to the results repo (and the metrics into the adapter's card with
    `update_card`). Returns the results repo commit sha."""
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
        sections = comparison_sections(evaluation, repo_id)
        card_commit = update_model_card(record, source, extra_operations=operations, card_sections=sections)
        logger.info("%s: model-index and eval results in commit %s", record["system"]["adapter_id"], card_commit)
    return commit


def submit(evaluation: Evaluation, results_repo: str | None = None) -> submissions.Submission:
    """Open the results and model pull requests of an evaluation (`dialoghub.evaluation.submissions.submit`)."""
    repo_id = results_repo or results.default_results_repo()
    return submissions.submit(evaluation, repo_id, card_sections=comparison_sections(evaluation, repo_id))


def evaluate_and_push(config: EvaluationConfig) -> str | None:
    """Evaluate, write the files under `config.output_dir` and push them to the results repo (the card too with
    `config.update_card`), whatever `config.push` and `config.submit` say. Returns the results repo commit sha, or
    None when `config.skip_if_evaluated` found the evaluation there already (nothing is pushed)."""
    evaluation = evaluate(config)
    write_local(evaluation, config.output_dir or default_output_dir())
    if evaluation.reused:
        return None
    return push(evaluation, config.results_repo, config.update_card)


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
