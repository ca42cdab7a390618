"""Results submitted as pull requests, and a maintainer's verification, as on the Hub.

`submit` opens two pull requests: one on the results repo adding the record and its details, one on the evaluated
model repo adding `.eval_results/<task>.yaml` (and the card's `model-index`), whose source is the results pull
request's commit. While it is open, the Hub's leaderboard shows the result with its pull request number.

`verify` is the maintainer's side: it reads the submitted results and the record they cite, re-runs the evaluation
from the revisions the record pins (model, adapter, dataset, scorers, decoding, seed), and compares every submitted
value with the re-run. Only when each is within `tolerance` points does it merge the results pull request, commit the
verification record to the results repo, sign the submitted entries with a `verifyToken` naming that record, and
merge the model pull request. The Hub's `verified` flag is computed from that record
(`dialoghub.hub.server.evaluations`).
Otherwise it comments the differences on the model pull request and leaves both open.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, HfApi, constants, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from dialoghub.evaluation import benchmark, results
from dialoghub.evaluation.model_card import update_model_card
from dialoghub.evaluation.provenance import pinned
from dialoghub.evaluation.run import AS_STORED, DTYPES, Evaluation, EvaluationConfig, evaluate
from dialoghub.models.generation import GenerationSettings

logger = logging.getLogger(__name__)

# Greedy decoding of the same revisions gives the same text; what may move is floating point across CPUs and thread
# counts (bfloat16 matmuls), which here has shifted a summary by a token or two. Half a point of a percentage metric
# is well inside every bootstrap interval of the leaderboard and far below any gap it ranks on.
DEFAULT_TOLERANCE = 0.5
VERIFICATIONS_FOLDER = "verifications"


class VerificationError(RuntimeError):
    """The pull request cannot be verified: not an open pull request, no results, or a source that can't be read."""


@dataclass(frozen=True)
class Submission:
    model_repo: str
    model_pr: int
    results_repo: str
    results_pr: int
    results_commit: str
    eval_results_file: str


def results_url(repo_id: str, commit: str, path: str) -> str:
    """Where a file of the results repo is, at a commit (`benchmark.RESULTS_SOURCE` reads such an address back)."""
    return f"{constants.ENDPOINT}/datasets/{repo_id}/blob/{commit}/{path}"


def submit(evaluation: Evaluation, results_repo: str, api=None, card_sections=()) -> Submission:
    api = api or HfApi()
    record = evaluation.record
    if (reason := benchmark.benchmark_mismatch(record)) is not None:
        raise ValueError(f"submit: {reason}; only the benchmark's full split goes on the leaderboard")
    model_repo = benchmark.evaluated_repo(record)
    api.create_repo(results_repo, repo_type="dataset", exist_ok=True)
    results_path, details_path = results.record_paths(record)
    label = record["system"]["label"]
    results_commit = api.create_commit(
        results_repo,
        [
            CommitOperationAdd(results_path, results.record_json(record | {"details_file": details_path})),
            CommitOperationAdd(details_path, results.details_parquet(evaluation.details)),
        ],
        repo_type="dataset",
        commit_message=f"Submit {record['task']}: {label}",
        commit_description=f"{results_path}\n{details_path}\n\nResults of {model_repo}, to be verified.",
        create_pr=True,
    )
    source = results_url(results_repo, results_commit.oid, results_path)
    entries = benchmark.eval_result_entries(record, source)
    eval_results_file = benchmark.eval_results_path(record)
    operation = CommitOperationAdd(eval_results_file, benchmark.eval_results_bytes(entries))
    model_commit = update_model_card(
        record,
        source,
        api=api,
        extra_operations=[operation],
        create_pr=True,
        card_sections=card_sections,
        repo_id=model_repo,
    )
    api.comment_discussion(
        model_repo,
        model_commit.pr_num,
        f"Results: {source} (pull request #{results_commit.pr_num} of {results_repo}). "
        f"A maintainer merges this after re-running the evaluation (`python -m evaluation.leaderboard verify "
        f"--repo {model_repo} --pr {model_commit.pr_num}`).",
    )
    return Submission(
        model_repo, model_commit.pr_num, results_repo, results_commit.pr_num, results_commit.oid, eval_results_file
    )


# ---------------------------------------------------------------------------------------------------------------
# Verification


def config_from_record(record: dict[str, Any], **overrides) -> EvaluationConfig:
    """The evaluation the record describes, every revision pinned to the commit it recorded."""
    system, dataset, scorers = record["system"], record["dataset"], record.get("scorers") or {}
    generation = dict(record["generation"])
    toxicity = scorers.get("toxicity")
    summarizer = record.get("round_trip_summarizer") or {}
    dtype = (record.get("runtime") or {}).get("dtype")
    values = {
        "task": record["task"],
        "model": f"{system['model_id']}@{system['model_sha']}",
        "adapter": f"{system['adapter_id']}@{system['adapter_sha']}" if system.get("adapter_id") else None,
        "dataset": f"{dataset['id']}@{dataset['sha']}",
        "split": dataset["split"],
        "limit": dataset.get("limit"),
        "protocol": record["protocol"],
        "embedding_model": pinned(scorers.get("semantic_similarity")),
        "toxicity": pinned(toxicity),
        "n_bootstrap": record["bootstrap"]["resamples"],
        "seed": record["bootstrap"]["seed"],
        "max_new_tokens": generation["max_new_tokens"],
        "generation": GenerationSettings(**generation),
        "dtype": dtype if dtype in DTYPES else AS_STORED,
        "push": False,
        "progress": False,
    }
    # The default round-trip summarizer is the evaluated base model alone: pin it only if it was another one.
    if summarizer and (summarizer.get("model_sha"), summarizer.get("adapter_sha")) != (system["model_sha"], None):
        values["summarizer"] = f"{summarizer['model_id']}@{summarizer['model_sha']}"
        if summarizer.get("adapter_id"):
            values["summarizer_adapter"] = f"{summarizer['adapter_id']}@{summarizer['adapter_sha']}"
    return EvaluationConfig(**(values | overrides))


@dataclass
class Verification:
    model_repo: str
    pr: int
    verified: bool
    comparisons: list[dict[str, Any]]
    """One per submitted entry: task id, submitted and reproduced values, difference."""
    tolerance: float
    record_url: str | None = None

    def markdown(self) -> str:
        verdict = "reproduced" if self.verified else "NOT reproduced"
        lines = [
            f"Verification: {verdict} within {self.tolerance} points.",
            "",
            "| task | submitted | re-run | difference |",
            "|---|---:|---:|---:|",
        ]
        for row in self.comparisons:
            reproduced = "–" if row["reproduced"] is None else f"{row['reproduced']:.4f}"
            difference = "–" if row["difference"] is None else f"{row['difference']:+.4f}"
            lines.append(f"| {row['task_id']} | {row['submitted']:.4f} | {reproduced} | {difference} |")
        if self.record_url:
            lines += ["", f"Verification record: {self.record_url}"]
        return "\n".join(lines)


def _read_json(repo_id: str, path: str, revision: str) -> dict[str, Any]:
    with open(hf_hub_download(repo_id, path, repo_type="dataset", revision=revision), encoding="utf-8") as file:
        return json.load(file)


def submitted_results(model_repo: str, pr: int, api) -> tuple[str, list]:
    """(file, entries) of the `.eval_results` file the open pull request adds or changes."""
    details = api.get_discussion_details(model_repo, pr)
    if not details.is_pull_request or details.status not in ("open", "draft"):
        raise VerificationError(f"{model_repo}#{pr} is not an open pull request (status {details.status})")
    revision = f"refs/pr/{pr}"
    submitted, on_main = (_results_files(model_repo, api, branch) for branch in (revision, "main"))
    changed = sorted(path for path, blob in submitted.items() if on_main.get(path) != blob)
    if len(changed) != 1:
        raise VerificationError(f"{model_repo}#{pr} should change one {benchmark.EVAL_RESULTS_FOLDER} file: {changed}")
    return changed[0], benchmark.read_eval_results(model_repo, changed[0], revision=revision)


def _results_files(model_repo: str, api, revision: str) -> dict[str, str]:
    """path -> blob id of the `.eval_results` files at `revision`."""
    try:
        tree = api.list_repo_tree(model_repo, path_in_repo=benchmark.EVAL_RESULTS_FOLDER, revision=revision)
        return {item.path: item.blob_id for item in tree if item.path.endswith(".yaml")}
    except EntryNotFoundError:
        return {}


def _results_pr(results_repo: str, commit: str, api) -> int | None:
    refs = api.list_repo_refs(results_repo, repo_type="dataset", include_pull_requests=True)
    for ref in refs.pull_requests or []:
        if ref.target_commit == commit:
            return int(ref.ref.removeprefix("refs/pr/"))
    return None


def verify(
    model_repo: str,
    pr: int,
    tolerance: float = DEFAULT_TOLERANCE,
    api=None,
    merge: bool = True,
    **overrides,
) -> Verification:
    """Re-run the evaluation a pull request submits; merge it (and its results) only when it reproduces."""
    api = api or HfApi()
    eval_results_file, entries = submitted_results(model_repo, pr, api)
    sources = {entry.source_url for entry in entries}
    match = benchmark.RESULTS_SOURCE.fullmatch(sources.pop()) if len(sources) == 1 and None not in sources else None
    if match is None:
        raise VerificationError(f"{model_repo}#{pr}: the results should all cite one results record, got {sources}")
    results_repo, results_commit, results_path = match["repo_id"], match["commit"], match["path"]
    record = _read_json(results_repo, results_path, results_commit)
    if benchmark.evaluated_repo(record) != model_repo:
        raise VerificationError(f"{results_path} evaluates {benchmark.evaluated_repo(record)}, not {model_repo}")

    rerun = evaluate(config_from_record(record, **overrides))
    comparisons = []
    for entry in entries:
        _, metric = benchmark.task_metric(entry.task_id)
        reproduced, recorded = (benchmark.recorded_value(row, metric) for row in (rerun.record, record))
        difference = None if reproduced is None else reproduced - entry.value
        comparisons.append(
            {"task_id": entry.task_id, "metric": metric, "submitted": entry.value, "recorded": recorded,
             "reproduced": reproduced, "difference": difference}
        )  # fmt: skip
    verified = all(
        row["difference"] is not None and abs(row["difference"]) <= tolerance and row["recorded"] == row["submitted"]
        for row in comparisons
    )
    verification = Verification(model_repo, pr, verified, comparisons, tolerance)
    if not verified or not merge:
        api.comment_discussion(model_repo, pr, verification.markdown())
        return verification

    if (results_pr := _results_pr(results_repo, results_commit, api)) is not None:
        api.merge_pull_request(results_repo, results_pr, repo_type="dataset", comment="Verified by a re-run.")
    verification_path = f"{VERIFICATIONS_FOLDER}/{results_path.removeprefix('results/').removesuffix('.json')}.json"
    verification_record = {
        "schema_version": 1,
        "status": "verified",
        "verified_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_id": model_repo,
        "pull_request": pr,
        "eval_results_file": eval_results_file,
        "results_file": results_path,
        "results_commit": results_commit,
        "tolerance_points": tolerance,
        "entries": [
            {
                "dataset_id": entry.dataset_id,
                "task_id": entry.task_id,
                "value": entry.value,
                "dataset_revision": entry.dataset_revision,
            }
            for entry in entries
        ],  # fmt: skip
        "comparisons": comparisons,
        "rerun": {key: rerun.record[key] for key in ("created_at", "metrics", "runtime", "versions", "code")},
    }
    operations = [CommitOperationAdd(verification_path, results.record_json(verification_record))]
    operations += card_operations(results_repo, api)
    verification_commit = api.create_commit(
        results_repo,
        operations,
        repo_type="dataset",
        commit_message=f"Verify {model_repo}#{pr}",
        commit_description=verification.markdown(),
    )
    token = f"datasets/{results_repo}/blob/{verification_commit.oid}/{verification_path}"
    verification.record_url = results_url(results_repo, verification_commit.oid, verification_path)
    signed = [dataclasses.replace(entry, verify_token=token) for entry in entries]
    api.create_commit(
        model_repo,
        [CommitOperationAdd(eval_results_file, benchmark.eval_results_bytes(signed))],
        commit_message="Sign the verified results",
        revision=f"refs/pr/{pr}",
    )
    api.merge_pull_request(model_repo, pr, comment=verification.markdown())
    return verification


def card_operations(results_repo: str, api) -> list:
    """The results repo's card and chart regenerated from the records on its main branch."""
    records, _ = results.load_records(results_repo, api=api)
    with tempfile.TemporaryDirectory(prefix="dialoghub-results-") as staging:
        chart = results.bar_chart(results.leaderboard_groups(records), Path(staging) / results.CHART_FILE)
        chart_bytes = chart.read_bytes()
    card = str(results.render_card(records, results_repo)).encode("utf-8")
    return [CommitOperationAdd("README.md", card), CommitOperationAdd(results.CHART_FILE, chart_bytes)]
