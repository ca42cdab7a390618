"""Evaluation results as the Hub has them: `.eval_results/*.yaml` in model repos, benchmark datasets with an
`eval.yaml`, and the leaderboard a benchmark gets from the results that name it
(https://huggingface.co/docs/hub/eval-results; the formats are hub-docs' `eval_results.yaml` and the `eval.yaml`
specification).

What the embedded Hub serves, in the shapes `huggingface_hub` 2.4 parses:

- `model_info(expand=["evalResults"])`: one item per result entry, `{filename, verified, data, pullRequest}`, for the
  files on `main` and those an open pull request adds or changes (`pullRequest` is its number, as on the Hub while a
  community PR is open). A file that does not parse is one `{filename, error}` item, which the client skips.
- `get_dataset_leaderboard(id)`: the entries of one task of the benchmark's `eval.yaml` (the first task unless the
  embedded Hub's own `task_id` query parameter names another), best value first, every entry a model repo on this Hub
  holds. `base_model=true` (the default, as on the Hub) leaves out models whose card declares a `base_model`.

`verified`: on the Hub a result is verified when its `verifyToken` is a valid signature from an HF Jobs run. Here the
token names a verification record that a maintainer's re-run committed to a results dataset on this Hub
(`datasets/<repo>/blob/<commit>/<path>`); the result is verified when that record exists, says `verified`, and lists
this model, file, task, value and dataset revision. A token that names nothing, or other numbers, verifies nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml
from dulwich.repo import Repo
from pydantic import BaseModel, ConfigDict, ValidationError

from dialoghub.hub.server.discussions import OPEN_STATUSES, Discussions, pr_ref
from dialoghub.hub.server.storage import HEAD_BRANCH, HubStorage
from dialoghub.hub.server.validation import HubError, card_data, load_card_yaml

EVAL_RESULTS_FOLDER = ".eval_results/"
BENCHMARK_FILE = "eval.yaml"
BENCHMARK_TAG = "benchmark:official"  # what `list_datasets(benchmark=True)` filters on
VERIFIED_STATUS = "verified"
VERIFY_TOKEN = re.compile(
    r"datasets/(?P<repo_id>[^/]+/[^/]+)/blob/(?P<commit>[0-9a-f]{40})/(?P<path>verifications/.+)"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResultDataset(_Strict):
    id: str
    task_id: str
    revision: str | None = None


class ResultSource(_Strict):
    url: str
    name: str | None = None
    user: str | None = None
    org: str | None = None


class EvalResultData(_Strict):
    """One entry of a `.eval_results/*.yaml` file (hub-docs `eval_results.yaml`)."""

    dataset: ResultDataset
    value: float
    verifyToken: str | None = None
    date: str | None = None
    source: ResultSource | None = None
    notes: str | None = None


class BenchmarkTask(BaseModel):
    id: str
    config: str | None = None
    split: str = "test"


class Benchmark(BaseModel):
    """The fields of `eval.yaml` the leaderboard needs; framework-specific ones (Inspect AI's `field_spec`, `solvers`,
    `scorers`) are kept but not interpreted."""

    name: str
    description: str | None = None
    evaluation_framework: str
    tasks: list[BenchmarkTask]


@dataclass(frozen=True)
class ResultItem:
    filename: str
    data: EvalResultData | None
    error: str | None
    pull_request: int | None

    def to_json(self, verified: bool) -> dict[str, Any]:
        if self.data is None:
            return {"filename": self.filename, "error": self.error}
        data = self.data.model_dump(exclude_none=True)
        return {"filename": self.filename, "verified": verified, "data": data, "pullRequest": self.pull_request}


def _parse_results_file(filename: str, text: str, pull_request: int | None) -> list[ResultItem]:
    try:
        entries = load_card_yaml(text)
        if not isinstance(entries, list):
            raise ValueError("expected a list of results")
        return [ResultItem(filename, EvalResultData.model_validate(entry), None, pull_request) for entry in entries]
    except (yaml.YAMLError, ValueError, ValidationError) as error:
        return [ResultItem(filename, None, str(error).splitlines()[0], pull_request)]


def _results_files(storage: HubStorage, repo: Repo, sha: str) -> dict[str, bytes]:
    return {path: blob for path, blob in storage.all_files(repo, sha).items() if _is_results_file(path)}


def _is_results_file(path: str) -> bool:
    return path.startswith(EVAL_RESULTS_FOLDER) and path.endswith((".yaml", ".yml")) and path.count("/") == 1


def eval_result_items(storage: HubStorage, repo: Repo) -> list[ResultItem]:
    """The results on `main`, then those each open pull request adds or changes (newest pull request first)."""
    items: list[ResultItem] = []
    main_files: dict[str, bytes] = {}
    if f"refs/heads/{HEAD_BRANCH}".encode() in repo.refs:
        main_files = _results_files(storage, repo, storage.resolve(repo, HEAD_BRANCH))
        for path, blob in sorted(main_files.items()):
            items += _parse_results_file(path, storage.read_blob(repo, blob.decode()).decode("utf-8", "replace"), None)
    for discussion in Discussions(storage).all(repo):
        if not discussion["isPullRequest"] or discussion["status"] not in OPEN_STATUSES:
            continue
        ref = pr_ref(discussion["num"])
        if ref not in repo.refs:
            continue
        for path, blob in sorted(_results_files(storage, repo, repo.refs[ref].decode()).items()):
            if main_files.get(path) != blob:
                text = storage.read_blob(repo, blob.decode()).decode("utf-8", "replace")
                items += _parse_results_file(path, text, discussion["num"])
    return items


def is_verified(storage: HubStorage, model_id: str, item: ResultItem) -> bool:
    """Whether the item's `verifyToken` names a verification record on this Hub that vouches for exactly it."""
    if item.data is None or not item.data.verifyToken:
        return False
    match = VERIFY_TOKEN.fullmatch(item.data.verifyToken)
    if match is None or not storage.exists("dataset", match["repo_id"]):
        return False
    repo = storage.open("dataset", match["repo_id"])
    try:
        entry = storage.entry(repo, storage.resolve(repo, match["commit"]), match["path"])
        if entry is None or entry.type != "file" or entry.lfs_oid:
            return False
        record = json.loads(storage.read_blob(repo, entry.oid))
    except (HubError, ValueError, KeyError, UnicodeDecodeError):
        return False
    finally:
        repo.close()
    if not isinstance(record, dict) or record.get("status") != VERIFIED_STATUS:
        return False
    if (record.get("model_id"), record.get("eval_results_file")) != (model_id, item.filename):
        return False
    dataset = item.data.dataset
    vouched = {"dataset_id": dataset.id, "task_id": dataset.task_id, "value": item.data.value,
               "dataset_revision": dataset.revision}  # fmt: skip
    return vouched in (record.get("entries") or [])


def eval_results_json(storage: HubStorage, model_id: str, repo: Repo) -> list[dict[str, Any]]:
    return [item.to_json(is_verified(storage, model_id, item)) for item in eval_result_items(storage, repo)]


def read_benchmark(storage: HubStorage, repo: Repo, dataset_id: str) -> Benchmark:
    """The dataset's `eval.yaml` on `main`; 404 when it has none (not a benchmark), 422 when it does not parse."""
    files = storage.all_files(repo, storage.resolve(repo, HEAD_BRANCH)) if b"refs/heads/main" in repo.refs else {}
    if BENCHMARK_FILE not in files:
        raise HubError(404, None, f"Dataset {dataset_id} has no leaderboard: it has no {BENCHMARK_FILE}")
    try:
        return Benchmark.model_validate(
            load_card_yaml(storage.read_blob(repo, files[BENCHMARK_FILE].decode()).decode())
        )
    except (yaml.YAMLError, ValidationError, UnicodeDecodeError) as error:
        raise HubError(422, None, f"{dataset_id}: invalid {BENCHMARK_FILE}: {str(error).splitlines()[0]}") from error


def declared_base_model(storage: HubStorage, repo: Repo) -> bool:
    if b"refs/heads/main" not in repo.refs:
        return False
    files = storage.all_files(repo, storage.resolve(repo, HEAD_BRANCH))
    if "README.md" not in files:
        return False
    metadata = card_data(storage.read_blob(repo, files["README.md"].decode()).decode("utf-8", "replace")) or {}
    return bool(metadata.get("base_model"))


def author_json(namespace: str, local_user: str) -> dict[str, Any]:
    kind = "user" if namespace == local_user else "org"
    return {"type": kind, "name": namespace, "fullname": namespace, "avatarUrl": ""}


def leaderboard_json(
    storage: HubStorage,
    dataset_id: str,
    benchmark: Benchmark,
    task_id: str | None,
    base_model_only: bool,
    show_private: bool,
    local_user: str,
) -> list[dict[str, Any]]:
    """The ranked entries of one benchmark task (rank 1 is the highest value; equal values share no rank, ties
    broken by model id, then merged before pull requests)."""
    task_ids = [task.id for task in benchmark.tasks]
    task_id = task_id or (task_ids[0] if task_ids else None)
    if task_id not in task_ids:
        raise HubError(400, None, f"{dataset_id}: no task {task_id!r} in {BENCHMARK_FILE}; expected one of {task_ids}")
    rows = []
    for model_id in storage.list_repos("model"):
        repo = storage.open("model", model_id)
        try:
            if storage.is_private(repo) and not show_private:
                continue
            if base_model_only and declared_base_model(storage, repo):
                continue
            for item in eval_result_items(storage, repo):
                data = item.data
                if data is None or (data.dataset.id, data.dataset.task_id) != (dataset_id, task_id):
                    continue
                rows.append((model_id, item, is_verified(storage, model_id, item)))
        finally:
            repo.close()
    rows.sort(key=lambda row: (-row[1].data.value, row[0], row[1].pull_request is not None, row[1].pull_request or 0))
    entries = []
    for rank, (model_id, item, verified) in enumerate(rows, start=1):
        data = item.data
        entry = {
            "rank": rank,
            "modelId": model_id,
            "value": data.value,
            "filename": item.filename,
            "verified": verified,
            "author": author_json(model_id.split("/")[0], local_user),
            "pullRequest": item.pull_request,
            "notes": data.notes,
            # Beyond what the client reads today (it keeps unknown keys as attributes): which task and data.
            "taskId": task_id,
            "datasetRevision": data.dataset.revision,
            "date": data.date,
        }
        if data.source is not None:
            entry["source"] = data.source.model_dump(exclude_none=True) | {"isExternal": False}
        entries.append(entry)
    return entries


def is_benchmark(files: dict[str, bytes]) -> bool:
    return BENCHMARK_FILE in files
