"""The leaderboard: evaluate a model (with an optional LoRA adapter), a baseline or the human ceiling on a task, push
the record and its per-sample details to the results dataset repo, and show the ranked leaderboard from that repo.

  python -m evaluation.leaderboard eval --model dialoghub/SmolLM2-135M-Instruct-q4_1 --task tweetsumm-abstractive
  python -m evaluation.leaderboard eval --adapter org/summarizer-lora@v1.0 --update-card
  python -m evaluation.leaderboard eval --baseline templated-lead      # also: lead, human
  python -m evaluation.leaderboard eval --model ID@REV --limit 20 --split validation --no-push
  python -m evaluation.leaderboard show

Every revision is resolved to a commit sha before anything is loaded, and the record names them all (model, adapter,
dataset, embedding model, round-trip summarizer). Generation is greedy by default and the bootstrap is seeded, so the
same revisions give the same scores. `--update-card` writes the headline metrics as `model-index` into the
adapter's card, as a new commit on its repo.
"""

import dialoghub.hubenv  # noqa: F401

import argparse
import importlib.metadata
import logging
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError

from dialoghub import prompts
from dialoghub.data.files import atomic_write
from dialoghub.generation import (
    BACKENDS,
    GenerationSettings,
    Generator,
    add_generation_arguments,
    generation_settings_from_args,
    load_generator,
)
from dialoghub.hub.embedded import hub_session
from dialoghub.hub.refs import NONE, optional_reference, resolve_repo
from dialoghub.paths import REPO_ROOT, base_dir
from evaluation import results
from evaluation.metrics import (
    DEFAULT_EMBEDDING_MODEL,
    PROFANITY_CHECK,
    PROTOCOLS,
    SemanticSimilarity,
    load_toxicity_scorer,
)
from evaluation.tasks import HUMAN, TASKS, TWEETSUMM_ABSTRACTIVE, Scorers, Task, TaskScores, get_task, reference_row

logger = logging.getLogger(__name__)

DEFAULT_TASK = TWEETSUMM_ABSTRACTIVE.name
DEFAULT_BOOTSTRAP = 1000
SOURCE_NAME = "dialoghub leaderboard"
AS_STORED = "as-stored"
DTYPES = (AS_STORED, "float32", "bfloat16")
# Measured on this project's 2-core CPU (AMX): bfloat16 generates the 110 test summaries 2.1x faster than float32, with
# ROUGE-L within 0.3 points; 16 prompts per batch cost about as much per decoding step as 8.
DEFAULT_DTYPE = "bfloat16"
DEFAULT_BATCH_SIZE = 16
VERSIONED_PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "datasets",
    "huggingface_hub",
    "sentence-transformers",
    "rouge_score",
    "sacrebleu",
    "nltk",
    "numpy",
    "alt-profanity-check",
    "scikit-learn",
)
# A task's metrics become model-index entries of this type
MODEL_INDEX_TASK_TYPES = {"summarize": "summarization", "generate": "text-generation"}


@dataclass
class Evaluation:
    record: dict[str, Any]
    """The results JSON (see `evaluation.results`)."""
    details: dict[str, list]
    """Per-sample columns of the details parquet."""


# ---------------------------------------------------------------------------------------------------------------
# Provenance


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def code_version() -> dict[str, Any]:
    """The checkout's commit, and whether the code that makes the scores has uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    status = git("status", "--porcelain", "--", "dialoghub", "evaluation")
    return {"commit": git("rev-parse", "HEAD"), "dirty": status is None or bool(status)}


def _repo_record(reference: str | None, repo_type: str = "model") -> dict[str, str | None] | None:
    """`{"id", "revision", "sha"}` of a Hub repo (`ID` or `ID@REV`) or a local folder (sha None)."""
    if reference is None:
        return None
    resolved = resolve_repo(reference, repo_type=repo_type)
    return {"id": resolved.repo_id, "revision": resolved.revision, "sha": resolved.sha}


def _pinned(repo: dict[str, str | None]) -> str:
    return repo["id"] if repo["sha"] is None else f"{repo['id']}@{repo['sha']}"


def model_label(repo_id: str, revision: str | None, sha: str | None) -> str:
    short = sha[:7] if sha else "local"
    return f"{repo_id}@{revision} ({short})" if revision and revision != sha else f"{repo_id} ({short})"


# ---------------------------------------------------------------------------------------------------------------
# Evaluating


def set_threads(threads: int | None) -> dict[str, Any]:
    """Set torch's CPU threads if asked, and return the runtime record. On a CPU shared with other jobs one thread
    can be several times faster than two: every op of a step waits for its slowest thread."""
    import torch

    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    return {"threads": torch.get_num_threads(), "platform": platform.platform(), "processor": platform.machine()}


def cast(generator: Generator, dtype: str) -> Generator:
    """The generator with its model cast to `dtype` (`as-stored`: unchanged)."""
    if dtype != AS_STORED:
        import torch

        generator.model.to(getattr(torch, dtype))
    return generator


def load_rows(task: Task, dataset: str | None, split: str | None, limit: int | None) -> tuple[list[dict], dict]:
    """The first `limit` rows of the task's split, read at a resolved dataset commit, and that dataset's record."""
    from datasets import load_dataset

    dataset_repo = _repo_record(dataset or task.dataset_id, repo_type="dataset")
    if dataset_repo["sha"] is None:
        raise ValueError(f"{dataset}: the leaderboard reads datasets from the Hub (ID or ID@REV), not local folders")
    split = split or task.split
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    data = load_dataset(dataset_repo["id"], task.dataset_config, split=split, revision=dataset_repo["sha"])
    if limit is not None:
        data = data.select(range(min(limit, data.num_rows)))
    rows = data.to_list()
    if not rows:
        raise ValueError(f"{_pinned(dataset_repo)} has no rows in split {split!r}")
    record = dataset_repo | {"config": task.dataset_config, "split": split, "limit": limit, "n_dialogs": len(rows)}
    return rows, record


def make_scorers(
    protocol: str, embedding_model: str | None, toxicity: str | None, n_bootstrap: int, seed: int
) -> tuple[Scorers, dict[str, Any]]:
    """The scoring models at resolved revisions, and their record."""
    semantic_similarity = None
    embedding = _repo_record(embedding_model) if embedding_model else None
    if embedding is not None:
        semantic_similarity = SemanticSimilarity(embedding["id"], revision=embedding["sha"])
    toxicity_scorer, toxicity_record = None, None
    if toxicity == PROFANITY_CHECK:
        toxicity_scorer, toxicity_record = load_toxicity_scorer(PROFANITY_CHECK), {"id": PROFANITY_CHECK}
    elif toxicity:
        toxicity_record = _repo_record(toxicity)
        toxicity_scorer = load_toxicity_scorer(toxicity_record["id"], revision=toxicity_record["sha"])
    scorers = Scorers(protocol, semantic_similarity, toxicity_scorer, n_bootstrap=n_bootstrap, seed=seed)
    return scorers, {"semantic_similarity": embedding, "toxicity": toxicity_record}


@dataclass
class _Row:
    system: dict[str, Any]
    scores: TaskScores
    details: dict[str, list]
    timings: dict[str, float]
    generation: dict[str, Any] | None = None
    round_trip_summarizer: dict[str, Any] | None = None
    dtype: str | None = None


def _reference_row(task: Task, baseline: str, rows: list[dict], scorers: Scorers) -> _Row:
    kind = results.HUMAN if baseline == HUMAN else results.BASELINE
    label = "human (leave-one-out)" if baseline == HUMAN else baseline
    started = time.perf_counter()
    scores = reference_row(task, baseline, rows, scorers)
    system = {"kind": kind, "name": baseline, "label": label, "prompt_version": None}
    return _Row(system, scores, scores.details, {"scoring": time.perf_counter() - started})


def _summarizer(task: Task, generator: Generator, adapter: str | None, options: dict[str, Any]) -> Generator | None:
    """The round-trip summarizer of a generation task: the one asked for, else the evaluated base model alone."""
    if task.prompt_task != prompts.GENERATE:
        return None
    summarizer, summarizer_adapter = options["summarizer"], options["summarizer_adapter"]
    if summarizer or summarizer_adapter:
        return cast(load_generator(summarizer, summarizer_adapter, backend=options["backend"]), options["dtype"])
    if adapter:  # the base alone, at the very commit evaluated
        return cast(load_generator(str(generator.base), backend=options["backend"]), options["dtype"])
    return generator


def _model_row(
    task: Task,
    rows: list[dict],
    scorers: Scorers,
    model: str | None,
    adapter: str | None,
    settings: GenerationSettings,
    options: dict[str, Any],
) -> _Row:
    loading_started = time.perf_counter()
    dtype, progress = options["dtype"], options["progress"]
    generator = cast(load_generator(model, adapter, backend=options["backend"]), dtype)
    provenance = generator.provenance()
    role = "adapter" if adapter else "model"
    repo_id, revision, sha = (provenance[f"{role}_{field}"] for field in ("id", "revision", "sha"))
    system = provenance | {
        "kind": results.ADAPTER if adapter else results.ZERO_SHOT,
        "name": repo_id,
        "label": model_label(repo_id, revision, sha) + (f" [{dtype}]" if dtype != DEFAULT_DTYPE else ""),
        "adapter_merged": generator.adapter_merged,
    }
    round_trip_seconds = [0.0]
    round_trip = None
    summarizer = _summarizer(task, generator, adapter, options)
    if summarizer is not None:
        summarizer_settings = GenerationSettings(
            max_new_tokens=TWEETSUMM_ABSTRACTIVE.max_new_tokens, batch_size=settings.batch_size
        )

        def summarize(conversations):
            summarizing_started = time.perf_counter()
            completions = summarizer.generate(
                conversations, summarizer_settings, progress=progress, desc="round-trip summaries"
            )
            round_trip_seconds[0] += time.perf_counter() - summarizing_started
            return [completion.text.strip() for completion in completions]

        scorers.summarize = summarize
        round_trip = summarizer.provenance() | {"generation": summarizer_settings.to_dict()}
    timings = {"model_load": time.perf_counter() - loading_started}

    docs = task.docs(rows)
    generation_started = time.perf_counter()
    completions = generator.generate(
        [doc.messages for doc in docs], settings, progress=progress, desc=f"{task.name} ({len(docs)} dialogs)"
    )
    timings["generation"] = time.perf_counter() - generation_started
    scoring_started = time.perf_counter()
    scores = task.score(docs, [completion.text.strip() for completion in completions], scorers)
    if summarizer is not None:
        timings["round_trip_generation"] = round_trip_seconds[0]
    timings["scoring"] = time.perf_counter() - scoring_started - round_trip_seconds[0]
    new_tokens = sum(completion.new_tokens for completion in completions)
    scores.report.statistics.update(
        new_tokens_mean=new_tokens / len(completions),
        unfinished_fraction=sum(not completion.finished for completion in completions) / len(completions),
        generated_tokens_per_s=new_tokens / timings["generation"],
    )
    details = scores.details | {
        "new_tokens": [completion.new_tokens for completion in completions],
        "stop_reason": [completion.stop_reason for completion in completions],
    }
    model_dtype = str(generator.model.dtype).removeprefix("torch.")
    return _Row(system, scores, details, timings, settings.to_dict(), round_trip, model_dtype)


def evaluate(
    task: str = DEFAULT_TASK,
    *,
    model: str | None = None,
    adapter: str | None = None,
    baseline: str | None = None,
    dataset: str | None = None,
    split: str | None = None,
    limit: int | None = None,
    protocol: str = "jackknife",
    generation: GenerationSettings | None = None,
    embedding_model: str | None = DEFAULT_EMBEDDING_MODEL,
    toxicity: str | None = PROFANITY_CHECK,
    summarizer: str | None = None,
    summarizer_adapter: str | None = None,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    backend: str = "auto",
    dtype: str = DEFAULT_DTYPE,
    threads: int | None = None,
    progress: bool = True,
) -> Evaluation:
    """Evaluate one leaderboard row: a model (`ID[@REV]` or folder) with an optional `adapter`, or a `baseline`
    (`lead`, `templated-lead`, or `human` for the leave-one-out ceiling).

    `generation` defaults to greedy decoding with the task's `max_new_tokens`, 16 prompts per batch.
    `embedding_model` and `toxicity` name the scoring models (None skips them). For `synthetic-dialogue`,
    `summarizer` (+ `summarizer_adapter`) writes the round-trip summaries; by default the evaluated base model
    without adapter. `dtype` casts the loaded models (`as-stored` keeps them as they are), `threads` sets torch's
    CPU threads."""
    started = time.perf_counter()
    task_config = get_task(task)
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {DTYPES}")
    if baseline is not None and (model or adapter):
        raise ValueError("give either --baseline or --model/--adapter, not both")
    if baseline is None and not (model or adapter):
        raise ValueError("nothing to evaluate: give --model (and optionally --adapter) or --baseline")
    if baseline is not None and baseline not in task_config.reference_rows:
        raise ValueError(f"{task}: no baseline {baseline!r}; expected one of {list(task_config.reference_rows)}")
    if (summarizer or summarizer_adapter) and task_config.prompt_task != prompts.GENERATE:
        raise ValueError(f"{task} needs no round-trip summarizer")

    runtime = set_threads(threads)
    rows, dataset_record = load_rows(task_config, dataset, split, limit)
    scorers, scorers_record = make_scorers(protocol, embedding_model, toxicity, n_bootstrap, seed)
    timings = {"data_load": time.perf_counter() - started}
    if baseline is not None:
        row = _reference_row(task_config, baseline, rows, scorers)
    else:
        settings = generation or GenerationSettings(
            max_new_tokens=task_config.max_new_tokens, batch_size=DEFAULT_BATCH_SIZE
        )
        options = {
            "summarizer": summarizer,
            "summarizer_adapter": summarizer_adapter,
            "backend": backend,
            "dtype": dtype,
            "progress": progress,
        }
        row = _model_row(task_config, rows, scorers, model, adapter, settings, options)
    timings |= row.timings
    timings["total"] = time.perf_counter() - started

    report = row.scores.report.to_dict()
    return Evaluation(
        {
            "schema_version": results.SCHEMA_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "task": task,
            "system": row.system,
            "dataset": dataset_record,
            # The human row is scored leave-one-out, the counterpart of the systems' protocol it is ranked under.
            "protocol": protocol if task_config.prompt_task == prompts.SUMMARIZE else report["protocol"],
            "metrics": report["metrics"],
            "statistics": report["statistics"],
            "n_samples": report["n_samples"],
            "bootstrap": {
                "resamples": report["n_bootstrap"],
                "seed": report["seed"],
                "confidence": report["confidence"],
            },
            "generation": row.generation,
            "round_trip_summarizer": row.round_trip_summarizer,
            "scorers": scorers_record,
            "runtime": runtime | {"dtype": row.dtype},
            "versions": package_versions(),
            "code": code_version(),
            "wall_time_s": timings,
        },
        row.details,
    )


# ---------------------------------------------------------------------------------------------------------------
# Writing, pushing, the model card


def write_local(evaluation: Evaluation, output_dir: str | Path) -> tuple[Path, Path]:
    """The record and the details parquet under `output_dir`, at the paths they have in the results repo."""
    results_path, details_path = results.record_paths(evaluation.record)
    output_dir = Path(output_dir)
    record = evaluation.record | {"details_file": details_path}
    atomic_write(output_dir / details_path, results.details_parquet(evaluation.details))
    atomic_write(output_dir / results_path, results.record_json(record))
    return output_dir / results_path, output_dir / details_path


def eval_results(record: dict[str, Any], source_url: str | None = None) -> list:
    """The task's leaderboard metrics of `record` as `huggingface_hub.EvalResult`s (values exactly as recorded)."""
    from huggingface_hub import EvalResult

    task = get_task(record["task"])
    dataset = record["dataset"]
    return [
        EvalResult(
            task_type=MODEL_INDEX_TASK_TYPES[task.prompt_task],
            task_name=task.name,
            dataset_type=dataset["id"],
            dataset_name=dataset["id"].split("/")[-1],
            dataset_config=dataset["config"],
            dataset_split=dataset["split"],
            dataset_revision=dataset["sha"],
            metric_type=metric,
            metric_name=f"{task.label(metric)} ({record['protocol']})",
            metric_value=record["metrics"][metric]["value"],
            metric_config=record["protocol"],
            source_name=SOURCE_NAME,
            source_url=source_url,
        )
        for metric in task.leaderboard_metrics
        if metric in record["metrics"]
    ]


def _same_slot(old, new) -> bool:
    return (old.task_name, old.dataset_type, old.dataset_split, old.metric_type, old.metric_config) == (
        new.task_name,
        new.dataset_type,
        new.dataset_split,
        new.metric_type,
        new.metric_config,
    )


def update_model_card(record: dict[str, Any], source_url: str | None = None, api=None) -> str:
    """Write the record's metrics into the evaluated adapter's card (`model-index`) as a new commit on its main
    branch; entries of the same task, dataset split, metric and protocol are replaced, others kept. Returns the sha."""
    from huggingface_hub import HfApi, ModelCard, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError
    from huggingface_hub.repocard_data import model_index_to_eval_results

    system = record["system"]
    if not system.get("adapter_id"):
        raise ValueError("--update-card writes into the evaluated adapter's card: evaluate with --adapter")
    repo_id = system["adapter_id"]
    api = api or HfApi()
    head = api.model_info(repo_id).sha
    try:
        card = ModelCard.load(hf_hub_download(repo_id, "README.md", revision=head))
    except EntryNotFoundError:
        card = ModelCard("---\n---\n")
    new = eval_results(record, source_url)
    card.data.model_name = card.data.model_name or repo_id.split("/")[-1]
    kept = [old for old in card.data.eval_results or [] if not any(_same_slot(old, entry) for entry in new)]
    card.data.eval_results = kept + new
    card = ModelCard(str(card))  # re-parse what will be pushed, and check it the way the Hub's readers will
    _, parsed = model_index_to_eval_results(card.data.to_dict()["model-index"])
    for entry in new:
        if not any(_same_slot(read, entry) and read.metric_value == entry.metric_value for read in parsed):
            raise RuntimeError(f"{repo_id}: the card's model-index does not read back {entry.metric_type}")
    commit = card.push_to_hub(
        repo_id,
        commit_message=f"Evaluation results: {record['task']} ({record['dataset']['split']} split)",
        parent_commit=head,
    )
    return commit.oid


def results_url(repo_id: str, commit: str, path: str) -> str:
    return f"{constants.ENDPOINT}/datasets/{repo_id}/blob/{commit}/{path}"


def evaluate_and_push(
    model: str | None,
    adapter: str | None = None,
    task: str = DEFAULT_TASK,
    limit: int | None = None,
    *,
    results_repo: str | None = None,
    update_card: bool = False,
    output_dir: str | Path | None = None,
    **evaluate_options,
) -> str:
    """Evaluate, write the files locally, push them to the results repo (and the metrics into the adapter's card
    with `update_card`). Returns the results repo commit sha. For a baseline row pass `model=None, baseline=...`."""
    evaluation = evaluate(task, model=model, adapter=adapter, limit=limit, **evaluate_options)
    write_local(evaluation, output_dir or default_output_dir())
    return push(evaluation, results_repo, update_card)


def push(evaluation: Evaluation, results_repo: str | None = None, update_card: bool = False) -> str:
    repo_id = results_repo or results.default_results_repo()
    commit = results.push_record(evaluation.record, evaluation.details, repo_id)
    if update_card:
        results_path, _ = results.record_paths(evaluation.record)
        card_commit = update_model_card(evaluation.record, results_url(repo_id, commit, results_path))
        logger.info("%s: model-index updated in commit %s", evaluation.record["system"]["adapter_id"], card_commit)
    return commit


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


def default_output_dir() -> Path:
    return base_dir() / "evaluations"


# ---------------------------------------------------------------------------------------------------------------
# Command line


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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.leaderboard",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = GenerationSettings()

    run = commands.add_parser("eval", help="evaluate one row and push it to the results repo")
    system = run.add_argument_group("what to evaluate (a model, or a row that needs none)")
    system.add_argument("--model", help="base model ID[@REV] or folder (default with --adapter: the adapter's base)")
    system.add_argument("--adapter", help="LoRA adapter ID[@REV] or folder")
    system.add_argument("--baseline", help="lead, templated-lead, or human (the leave-one-out ceiling)")
    data = run.add_argument_group("data and scoring")
    data.add_argument("--task", default=DEFAULT_TASK, choices=sorted(TASKS))
    data.add_argument("--dataset", help="dataset ID[@REV] (default: the task's, <org>/tweetsumm-clean)")
    data.add_argument("--split", help="default: the task's (test); tune on validation")
    data.add_argument("--limit", type=int, help="evaluate the first N dialogs only")
    data.add_argument("--protocol", default="jackknife", choices=PROTOCOLS, help="multi-reference ROUGE protocol")
    data.add_argument(
        "--embedding-model",
        default=DEFAULT_EMBEDDING_MODEL,
        help=f"semantic-similarity model ID[@REV] or folder, or '{NONE}' (default {DEFAULT_EMBEDDING_MODEL})",
    )
    data.add_argument(
        "--toxicity", default=PROFANITY_CHECK, help=f"{PROFANITY_CHECK}, a classifier ID[@REV], or '{NONE}'"
    )
    data.add_argument("--summarizer", help="synthetic-dialogue: round-trip summarizer ID[@REV] (default: the base)")
    data.add_argument("--summarizer-adapter", help="synthetic-dialogue: the summarizer's adapter ID[@REV]")
    data.add_argument("--n-bootstrap", type=int, default=DEFAULT_BOOTSTRAP, help="bootstrap resamples")
    data.add_argument("--seed", type=int, default=0, help="bootstrap and sampling seed")
    decoding = add_generation_arguments(run, replace(defaults, batch_size=DEFAULT_BATCH_SIZE), "generation")
    run.set_defaults(max_new_tokens=None)  # None: the task's own length
    decoding.add_argument("--backend", default="auto", choices=BACKENDS)
    decoding.add_argument("--dtype", default=DEFAULT_DTYPE, choices=DTYPES, help="cast the model to this dtype")
    decoding.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: one per core). On cores shared with other jobs, 1 thread was 3-10x faster "
        "than 2 here: every op waits for its slowest thread",
    )
    output = run.add_argument_group("output")
    output.add_argument("--results-repo", help="results dataset repo (default <org>/dialoghub-results)")
    output.add_argument("--output-dir", type=Path, help="local copies (default $DIALOGHUB_BASE_DIR/evaluations)")
    output.add_argument("--no-push", action="store_true", help="write the local files only")
    output.add_argument("--update-card", action="store_true", help="write model-index into the adapter's card")
    output.add_argument("--no-progress", action="store_true", help="no progress bars")

    show = commands.add_parser("show", help="print the ranked leaderboard and write its PNG bar chart")
    show.add_argument("--results-repo", help="results dataset repo (default <org>/dialoghub-results)")
    show.add_argument("--revision", help="a branch, tag or commit of the results repo (default: main)")
    show.add_argument("--task", choices=sorted(TASKS), help="one task only")
    show.add_argument("--output-dir", type=Path, help="PNG folder (default $DIALOGHUB_BASE_DIR/leaderboard)")

    args = parser.parse_args(argv)
    if args.command == "eval":
        if args.no_push and args.update_card:
            parser.error("--update-card needs the push (drop --no-push)")
        if args.update_card and not args.adapter:
            parser.error("--update-card writes into the evaluated adapter's card: give --adapter")
    return args


def run(args: argparse.Namespace) -> None:
    if args.command == "show":
        markdown, chart = render_leaderboard(args.results_repo, args.revision, args.task, args.output_dir)
        print(markdown)
        print(f"\nchart: {chart}")
        return
    task = get_task(args.task)
    settings = generation_settings_from_args(args, max_new_tokens=args.max_new_tokens or task.max_new_tokens)
    evaluation = evaluate(
        args.task,
        model=args.model,
        adapter=args.adapter,
        baseline=args.baseline,
        dataset=args.dataset,
        split=args.split,
        limit=args.limit,
        protocol=args.protocol,
        generation=settings,
        embedding_model=optional_reference(args.embedding_model),
        toxicity=optional_reference(args.toxicity),
        summarizer=args.summarizer,
        summarizer_adapter=args.summarizer_adapter,
        n_bootstrap=args.n_bootstrap,
        seed=args.seed,
        backend=args.backend,
        dtype=args.dtype,
        threads=args.threads,
        progress=not args.no_progress,
    )
    results_path, details_path = write_local(evaluation, args.output_dir or default_output_dir())
    print("\n".join(summary_lines(evaluation)))
    print(f"record: {results_path}\ndetails: {details_path}")
    if not args.no_push:
        repo_id = args.results_repo or results.default_results_repo()
        commit = push(evaluation, repo_id, args.update_card)
        print(f"pushed to {repo_id}@{commit}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("evaluation").setLevel(logging.INFO)

    try:
        with hub_session():
            run(args)
    except (ValueError, FileNotFoundError, results.ResultsRepoError, HfHubHTTPError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
