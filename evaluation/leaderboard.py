"""The leaderboard: evaluate a model (with an optional LoRA adapter), a baseline or the human ceiling on a task, push
the record and its per-sample details to the results dataset repo, and show the ranked leaderboard from that repo.

  python -m evaluation.leaderboard eval --config evaluation/recipes/leaderboard.yaml --baseline lead
  python -m evaluation.leaderboard eval --config evaluation/recipes/leaderboard.yaml \
      --adapter org/summarizer-lora@v1.0 --update_card true
  python -m evaluation.leaderboard eval --config evaluation/recipes/leaderboard.yaml --model ID@REV --limit 20 \
      --split validation --push false
  python -m evaluation.leaderboard show [--results_repo org/dialoghub-results]

`eval` takes every field of `evaluation.run.EvaluationConfig` (and its `GenerationSettings`) as a recipe key or a
flag; see `eval --help`. `update_card` writes the headline metrics as `model-index` into the adapter's card, as a
new commit on its repo.
"""

import dialoghub.hubenv  # noqa: F401

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError

from dialoghub.data.files import atomic_write
from dialoghub.hub.embedded import hub_session
from dialoghub.paths import base_dir
from dialoghub.recipes import configure_logging, parse_recipe
from evaluation import results
from evaluation.model_card import update_model_card
from evaluation.run import Evaluation, EvaluationConfig, evaluate
from evaluation.tasks import TASKS, get_task

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


COMMANDS = {
    "eval": (EvaluationConfig, "evaluate one row and push it to the results repo"),
    "show": (ShowArguments, "print the ranked leaderboard and write its PNG bar chart"),
}


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


def push(evaluation: Evaluation, results_repo: str | None = None, update_card: bool = False) -> str:
    """Push the record and its details to the results repo (and the metrics into the adapter's card with
    `update_card`). Returns the results repo commit sha."""
    repo_id = results_repo or results.default_results_repo()
    commit = results.push_record(evaluation.record, evaluation.details, repo_id)
    if update_card:
        results_path, _ = results.record_paths(evaluation.record)
        card_commit = update_model_card(evaluation.record, results_url(repo_id, commit, results_path))
        logger.info("%s: model-index updated in commit %s", evaluation.record["system"]["adapter_id"], card_commit)
    return commit


def evaluate_and_push(config: EvaluationConfig) -> str:
    """Evaluate, write the files locally, push them as `config` says. Returns the results repo commit sha."""
    evaluation = evaluate(config)
    write_local(evaluation, config.output_dir or default_output_dir())
    return push(evaluation, config.results_repo, config.update_card)


def render_leaderboard(
    results_repo: str | None = None,
    revision: str | None = None,
    task: str | None = None,
    output_dir: str | Path | None = None,
) -> tuple[str, Path]:
    """The ranked leaderboard from the results repo alone: markdown, and the path of the PNG bar chart written."""
    records, sha = results.load_records(results_repo, revision)
    groups = results.leaderboard_groups(records, task)
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
        markdown, chart = render_leaderboard(config.results_repo, config.revision, config.task, config.output_dir)
        print(markdown)
        print(f"\nchart: {chart}")
        return
    evaluation = evaluate(config)
    results_path, details_path = write_local(evaluation, config.output_dir or default_output_dir())
    print("\n".join(summary_lines(evaluation)))
    print(f"record: {results_path}\ndetails: {details_path}")
    if config.push:
        repo_id = config.results_repo or results.default_results_repo()
        commit = push(evaluation, repo_id, config.update_card)
        print(f"pushed to {repo_id}@{commit}")


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging(logging.WARNING, "evaluation")
    try:
        command, config = parse_args(argv)
        with hub_session():
            run(command, config)
    except (ValueError, FileNotFoundError, results.ResultsRepoError, HfHubHTTPError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
