"""The leaderboard the Hub's own way: the benchmark dataset's `eval.yaml` and the models' `.eval_results/*.yaml`
(https://huggingface.co/docs/hub/eval-results).

- `org/tweetsumm-clean` is the benchmark: its `eval.yaml` (Inspect AI's task format, `evaluation_framework:
  inspect-ai`) declares one task per leaderboard metric of every task in `dialoghub.evaluation.tasks` that reads it.
  A Hub task holds one value, so the headline metric is the task itself (`tweetsumm-abstractive`: jackknifed ROUGE-L)
  and every other metric a task of its own (`tweetsumm-abstractive/rouge1`, ...); `get_dataset_leaderboard` ranks
  the first.
- An evaluated model or adapter carries `.eval_results/<task>.yaml`: one `EvalResultEntry` per metric, with the
  dataset revision, the date, the source (the results-repo commit holding the record and its details) and notes
  (protocol, split, decoding, the bootstrap interval). Written with `huggingface_hub`'s own serialisation.

Only the split the benchmark declares, evaluated in full (no `limit`), goes into `.eval_results`: the Hub's
leaderboard has no room for a subset's score next to the full test set's.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import yaml
from huggingface_hub import (
    CommitOperationAdd,
    EvalResultEntry,
    HfApi,
    eval_result_entries_to_yaml,
    hf_hub_download,
    parse_eval_result_entries,
)
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError
from huggingface_hub.hf_api import DatasetLeaderboardEntry
from huggingface_hub.utils import get_session, hf_raise_for_status

from dialoghub.evaluation import results
from dialoghub.evaluation.tasks import TASKS, Task, get_task
from dialoghub.metrics.report import metric_protocol
from dialoghub.models import prompts

logger = logging.getLogger(__name__)

BENCHMARK_FILE = "eval.yaml"
EVAL_RESULTS_FOLDER = ".eval_results"
EVALUATION_FRAMEWORK = "inspect-ai"
TASK_METRIC_SEPARATOR = "/"
SOURCE_NAME = "dialoghub results: record and per-sample details"
# Inspect AI field specs: which dataset columns are a task's input and target.
FIELD_SPECS = {
    prompts.SUMMARIZE: {"input": "dialogue", "target": "summaries"},
    prompts.GENERATE: {"input": "summaries", "target": "dialogue"},
}


# Toxicity of the answers, recorded as statistics (probabilities in [0, 1], lower is better) rather than as metrics
# with intervals; they are benchmark tasks too, so that the results carry them.
STATISTIC_METRICS = {"toxicity_mean": "Toxicity (mean probability)", "toxic_fraction": "Toxic fraction"}


def result_metrics(task: Task) -> list[str]:
    """What a task's results hold: its leaderboard metrics, then the toxicity statistics."""
    return [*task.leaderboard_metrics, *(name for name in STATISTIC_METRICS if name not in task.leaderboard_metrics)]


def recorded_value(record: dict[str, Any], metric: str) -> float | None:
    if metric in record["metrics"]:
        return record["metrics"][metric]["value"]
    return record.get("statistics", {}).get(metric) if metric in STATISTIC_METRICS else None


def metric_label(task: Task, metric: str) -> str:
    return STATISTIC_METRICS.get(metric) or task.label(metric)


def benchmark_task_id(task: Task, metric: str) -> str:
    return task.name if metric == task.headline_metric else f"{task.name}{TASK_METRIC_SEPARATOR}{metric}"


def task_metric(task_id: str) -> tuple[Task, str]:
    """The task and metric a benchmark task id stands for (`ValueError` for one no task declares)."""
    name, _, metric = task_id.partition(TASK_METRIC_SEPARATOR)
    task = get_task(name)
    metric = metric or task.headline_metric
    if metric not in result_metrics(task):
        raise ValueError(f"{task_id!r}: {task.name} has no leaderboard metric {metric!r}")
    return task, metric


def benchmark_tasks(dataset_name: str | None = None) -> list[tuple[str, Task, str]]:
    """(task id, task, metric) of every benchmark task, the headline leaderboards first, in registry order."""
    tasks = [task for task in TASKS.values() if dataset_name is None or task.dataset_name == dataset_name]
    headlines = [(task.name, task, task.headline_metric) for task in tasks]
    others = [
        (benchmark_task_id(task, metric), task, metric)
        for task in tasks
        for metric in result_metrics(task)
        if metric != task.headline_metric
    ]
    return headlines + others


def eval_yaml(dataset_id: str) -> dict[str, Any]:
    """The benchmark's `eval.yaml` for the dataset repo `dataset_id` (of the tasks' dataset)."""
    dataset_name = dataset_id.split("/")[-1]
    tasks = benchmark_tasks(dataset_name) or benchmark_tasks(next(iter(TASKS.values())).dataset_name)
    return {
        "name": f"dialoghub {dataset_name}",
        "description": (
            "Customer-support dialogue benchmarks on TweetSumm: summarize a dialogue (scored against every human "
            "summary, jackknifed ROUGE) and write the dialogue a summary describes (scored by round trip through a "
            "summarizer). One task per metric; the task named after the benchmark task is its headline metric. "
            "Values are percentages; greedy decoding unless the result's notes say otherwise."
        ),
        "evaluation_framework": EVALUATION_FRAMEWORK,
        "tasks": [
            {
                "id": task_id,
                "config": task.dataset_config,
                "split": task.split,
                "field_spec": FIELD_SPECS[task.prompt_task],
                "solvers": [
                    {"name": "system_message", "args": {"template": prompts.SYSTEM_PROMPTS[task.prompt_task]}},
                    {"name": "generate"},
                ],
                "scorers": [{"name": f"dialoghub/{metric}", "args": {"label": metric_label(task, metric)}}],
            }
            for task_id, task, metric in tasks
        ],
    }


def eval_yaml_bytes(dataset_id: str) -> bytes:
    # A copy of every shared value: YAML would write repeated objects as aliases, which the Hub's readers refuse.
    spec = json.loads(json.dumps(eval_yaml(dataset_id)))
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True).encode("utf-8")


def publish_benchmark(dataset_id: str, api=None) -> str | None:
    """Commit the `eval.yaml` to the dataset's main branch, unless it is there already. Returns the new commit sha
    (none when nothing changed). Tags, and the evaluations pinned to them, are untouched."""
    api = api or HfApi()
    head = api.dataset_info(dataset_id).sha
    content = eval_yaml_bytes(dataset_id)
    try:
        with open(hf_hub_download(dataset_id, BENCHMARK_FILE, repo_type="dataset", revision=head), "rb") as file:
            if file.read() == content:
                return None
    except EntryNotFoundError:
        pass
    commit = api.create_commit(
        dataset_id,
        [CommitOperationAdd(BENCHMARK_FILE, content)],
        repo_type="dataset",
        commit_message=f"Benchmark: {BENCHMARK_FILE} with {len(eval_yaml(dataset_id)['tasks'])} tasks",
        parent_commit=head,
    )
    return commit.oid


# ---------------------------------------------------------------------------------------------------------------
# .eval_results


def eval_results_path(record: dict[str, Any]) -> str:
    return f"{EVAL_RESULTS_FOLDER}/{record['task']}.yaml"


def evaluated_repo(record: dict[str, Any]) -> str:
    """The model repo a record's results belong to: the adapter's, else the model's."""
    system = record["system"]
    repo_id = system.get("adapter_id") or system.get("model_id")
    if not repo_id or not (system.get("adapter_sha") or system.get("model_sha")):
        raise ValueError("only a model or adapter read from the Hub has a repo to carry its results")
    return repo_id


def benchmark_mismatch(record: dict[str, Any]) -> str | None:
    """Why the record does not belong on the benchmark's leaderboard, or none."""
    task, dataset = get_task(record["task"]), record["dataset"]
    if dataset.get("limit") is not None:
        return f"evaluated on the first {dataset['limit']} dialogs only"
    if (dataset["config"], dataset["split"]) != (task.dataset_config, task.split):
        return f"evaluated on {dataset['config']}/{dataset['split']}, the benchmark task is on {task.split}"
    return None


def _notes(record: dict[str, Any], metric: str) -> str:
    task, dataset = get_task(record["task"]), record["dataset"]
    generation = record.get("generation") or {}
    decoding = "sampling" if generation.get("do_sample") else "greedy"
    if metric in record["metrics"]:
        estimate = record["metrics"][metric]
        what = f"{task.label(metric)} ({metric_protocol(metric, record['protocol'])})"
        interval = (
            f"95% bootstrap interval {estimate['ci_low']:.2f}-{estimate['ci_high']:.2f} "
            f"({record['bootstrap']['resamples']} resamples, seed {record['bootstrap']['seed']})"
        )
    else:
        scorer = record.get("statistics", {}).get("toxicity_scorer")
        what, interval = f"{metric_label(task, metric)}, {scorer}", "a probability in [0, 1], lower is better"
    parts = [
        what,
        f"{record['n_samples']} samples of {dataset['n_dialogs']} {dataset['split']} dialogs",
        interval,
        f"decoding: {decoding}, max_new_tokens {generation.get('max_new_tokens')}",
        f"dtype {(record.get('runtime') or {}).get('dtype')}",
        f"prompt v{record['system'].get('prompt_version')}",
    ]
    return "; ".join(parts)


def eval_result_entries(record: dict[str, Any], source_url: str) -> list[EvalResultEntry]:
    """Every leaderboard metric of the record as an `EvalResultEntry`, values exactly as recorded."""
    task, dataset = get_task(record["task"]), record["dataset"]
    return [
        EvalResultEntry(
            dataset_id=dataset["id"],
            task_id=benchmark_task_id(task, metric),
            value=recorded_value(record, metric),
            dataset_revision=dataset["sha"],
            date=record["created_at"],
            source_url=source_url,
            source_name=SOURCE_NAME,
            notes=_notes(record, metric),
        )
        for metric in result_metrics(task)
        if recorded_value(record, metric) is not None
    ]


def eval_results_bytes(entries: list[EvalResultEntry]) -> bytes:
    return yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False, allow_unicode=True).encode("utf-8")


def read_eval_results(repo_id: str, path: str, revision: str | None = None) -> list[EvalResultEntry]:
    with open(hf_hub_download(repo_id, path, revision=revision), encoding="utf-8") as file:
        return parse_eval_result_entries(yaml.safe_load(file) or [])


# `dialoghub.evaluation.submissions.results_url`: where a record of the results repo is, at a commit.
RESULTS_SOURCE = re.compile(r".*/datasets/(?P<repo_id>[^/]+/[^/]+)/blob/(?P<commit>[0-9a-f]{40})/(?P<path>results/.+)")


def has_benchmark(dataset_id: str, api=None) -> bool:
    api = api or HfApi()
    try:
        return api.file_exists(dataset_id, BENCHMARK_FILE, repo_type="dataset")
    except HfHubHTTPError:
        return False


def published_task_ids(dataset_id: str, api=None) -> list[str]:
    """The task ids of the `eval.yaml` on the dataset's main branch, in its order."""
    endpoint = api.endpoint if api is not None else None
    with open(
        hf_hub_download(dataset_id, BENCHMARK_FILE, repo_type="dataset", endpoint=endpoint), encoding="utf-8"
    ) as file:
        return [task["id"] for task in (yaml.safe_load(file) or {}).get("tasks") or []]


def dataset_leaderboard(dataset_id: str, task_id: str | None = None, base_model_only: bool = False, api=None) -> list:
    """`get_dataset_leaderboard` for the benchmark's first task; another task through the same client session and
    entry type, with the embedded Hub's `task_id` parameter (the stock method has none)."""
    api = api or HfApi()
    if task_id is None:
        return api.get_dataset_leaderboard(dataset_id, base_model_only=base_model_only)
    response = get_session().get(
        f"{api.endpoint}/api/datasets/{dataset_id}/leaderboard",
        headers=api._build_hf_headers(),
        params={"task_id": task_id, "base_model": base_model_only},
    )
    hf_raise_for_status(response)
    return [DatasetLeaderboardEntry(**entry) for entry in response.json()]


def entry_record(entry, cache: dict | None = None) -> dict[str, Any]:
    """The results record a leaderboard entry's source names, read at the commit it names."""
    match = RESULTS_SOURCE.fullmatch((entry.source or {}).get("url") or "")
    if match is None:
        raise ValueError(f"{entry.model_id}: the leaderboard entry cites no results record ({entry.source})")
    key = match.group(0)
    if cache is not None and key in cache:
        return cache[key]
    path = hf_hub_download(match["repo_id"], match["path"], repo_type="dataset", revision=match["commit"])
    with open(path, encoding="utf-8") as file:
        record = json.load(file) | {"results_file": match["path"], "results_repo": match["repo_id"]}
    if cache is not None:
        cache[key] = record
    return record


def status_label(entry) -> str:
    if entry.pull_request is not None:
        return f"PR #{entry.pull_request}"
    return "verified" if entry.verified else "merged"


# Rows the results repo has that no model repo carries on the Hub: the baselines and the human ceiling (no model), and
# zero-shot rows of models whose repos hold no results (the base model's card is not rewritten by an evaluation).
REFERENCE_KINDS = ("baseline", "human", "zero-shot")


def hub_groups(dataset_id: str, results_repo: str | None = None, task: str | None = None, api=None) -> list:
    """The leaderboard groups of each task's headline ranking on the Hub (`get_dataset_leaderboard`, every model,
    base or derived), rows in the Hub's order, each the record its entry cites. The results repo's rows of the same
    groups that are not on the Hub (`REFERENCE_KINDS`) are placed among them by value, unranked by the Hub."""
    declared = published_task_ids(dataset_id, api)
    headline_ids = [task_id for task_id in declared if task_id in TASKS]  # a headline task is named as its task
    first_task_id = declared[0] if declared else None
    cache: dict[str, dict] = {}
    grouped: dict[tuple, list[dict]] = {}
    for task_id in headline_ids:
        if task is not None and task_id != task:
            continue
        entries = dataset_leaderboard(dataset_id, None if task_id == first_task_id else task_id, api=api)
        benchmark_task, metric = task_metric(task_id)
        for entry in entries:
            record = entry_record(entry, cache)
            if record["task"] != benchmark_task.name:  # a Hub that ignores `task_id` answers with its first task
                continue
            label = f"{record['system']['label']} · {status_label(entry)}"
            if recorded_value(record, metric) != entry.value:  # a result edited after its record: say so
                label += f" (Hub value {entry.value:.2f}, not its record's)"
            row = record | {"system": record["system"] | {"label": label}, "hub_rank": entry.rank}
            grouped.setdefault(results.group_key(record), []).append(row)
    try:
        references, _ = results.load_records(results_repo, api=api) if results_repo is not None else ([], None)
    except results.ResultsRepoError:  # nothing but the Hub's entries to show
        references = []
    on_hub = {results.system_key(row) for rows in grouped.values() for row in rows}
    groups = []
    for key, rows in grouped.items():
        latest: dict[str, dict] = {}
        for record in references:
            system_key = results.system_key(record)
            if record["system"]["kind"] not in REFERENCE_KINDS or results.group_key(record) != key:
                continue
            if system_key in on_hub:
                continue
            if system_key not in latest or record["created_at"] > latest[system_key]["created_at"]:
                latest[system_key] = record
        merged = list(rows)
        for reference in sorted(latest.values(), key=results.headline, reverse=True):
            below = (i for i, row in enumerate(merged) if results.headline(row) < results.headline(reference))
            merged.insert(next(below, len(merged)), reference)
        groups.append(results.Group(*key, rows=merged))
    task_order = list(TASKS)
    return sorted(
        groups, key=lambda group: (task_order.index(group.task), -group.n_dialogs, group.split, group.dataset_sha)
    )
