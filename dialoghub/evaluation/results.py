"""The results dataset repo (default `<org>/dialoghub-results`) and everything built from it alone: the ranked
leaderboard as markdown and as a PNG bar chart, and the repo's card.

One evaluation is one commit adding

    results/<task>/<system>/results_<UTC time>.json    the record: system and every revision, dataset and its sha,
                                                       protocol, metrics with intervals, generation, versions, time
    details/<task>/<system>/details_<UTC time>.parquet per-sample inputs, predictions and scores

and regenerating `README.md` (from `datasets_repo/dialoghub-results/README.md.j2`) and `leaderboard.png` from every
record in the repo, so the card is never behind the files. The commit names its parent: a concurrent push makes it
fail (HTTP 412) instead of overwriting the card, and it is retried on the new head.

The leaderboard is split into groups of comparable rows: same task, dataset commit, split, number of dialogs and
protocol. Within a group, a system evaluated several times at the same revisions is shown once (the latest record).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dialoghub.core.paths import REPO_ROOT, project_org
from dialoghub.evaluation.tasks import TASKS, get_task
from dialoghub.hub.client import RepoReferenceError, UnknownRepoError, resolve_repo
from dialoghub.models.prompts import SUMMARIZE

logger = logging.getLogger(__name__)

RESULTS_REPO_NAME = "dialoghub-results"
CARD_TEMPLATE = REPO_ROOT / "datasets_repo" / RESULTS_REPO_NAME / "README.md.j2"
CHART_FILE = "leaderboard.png"
SCHEMA_VERSION = 1
PUSH_ATTEMPTS = 3

# Row kinds, in the order they are coloured and explained
BASELINE, HUMAN, ZERO_SHOT, ADAPTER = "baseline", "human", "zero-shot", "adapter"
KIND_COLOURS = {BASELINE: "#9e9e9e", HUMAN: "#2e7d32", ZERO_SHOT: "#1565c0", ADAPTER: "#ef6c00"}


class ResultsRepoError(RuntimeError):
    """The results repo is missing, empty, or holds a record that cannot be read."""


def default_results_repo() -> str:
    return f"{project_org()}/{RESULTS_REPO_NAME}"


def _slug(text: str) -> str:
    return text.replace("/", "__").replace("@", "--")


def system_slug(system: dict[str, Any]) -> str:
    """The folder of a system's records: `baseline__lead`, `human`, `<model>`, `<model>__<adapter>`."""
    if system["kind"] in (BASELINE, HUMAN):
        return _slug(system["name"]) if system["kind"] == HUMAN else f"baseline__{_slug(system['name'])}"
    parts = [system["model_id"]] + ([system["adapter_id"]] if system.get("adapter_id") else [])
    return "__".join(_slug(part) for part in parts)


def record_paths(record: dict[str, Any]) -> tuple[str, str]:
    """(results JSON, details parquet) paths of a record in the repo, from its task, system and creation time."""
    folder = f"{record['task']}/{system_slug(record['system'])}"
    stamp = record["created_at"].removesuffix("+00:00").replace(":", "-")
    return f"results/{folder}/results_{stamp}.json", f"details/{folder}/details_{stamp}.parquet"


def record_json(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")


def details_parquet(details: dict[str, list]) -> bytes:
    """The per-sample details as parquet bytes (fixed settings: the same details give the same bytes)."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pydict(details), buffer, compression="snappy")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# Reading the repo


def load_details(repo_id: str, record: dict[str, Any], revision: str) -> dict[str, list]:
    """The per-sample columns of a record's details parquet, read at `revision` of the results repo."""
    import pandas as pd
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(repo_id, record["details_file"], repo_type="dataset", revision=revision)
    return pd.read_parquet(path).to_dict(orient="list")


def load_records(
    repo_id: str | None = None, revision: str | None = None, api=None
) -> tuple[list[dict[str, Any]], str]:
    """Every results record in the repo at `revision` (default: the main branch), and the commit sha read."""
    from huggingface_hub import HfApi

    api = api or HfApi()
    repo_id = repo_id or default_results_repo()
    try:
        sha = resolve_repo(repo_id, revision, repo_type="dataset", api=api).sha
    except UnknownRepoError as error:
        raise ResultsRepoError(f"no results repo {repo_id!r} on {api.endpoint}: evaluate something first") from error
    except RepoReferenceError as error:
        raise ResultsRepoError(f"results repo: {error}") from error
    folder = Path(api.snapshot_download(repo_id, repo_type="dataset", revision=sha, allow_patterns=["results/**"]))
    records = []
    for path in sorted(folder.glob("results/**/*.json")):
        name = path.relative_to(folder).as_posix()
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ResultsRepoError(f"{repo_id}@{sha}: {name} is not valid JSON ({error})") from error
        if record.get("schema_version") != SCHEMA_VERSION:
            raise ResultsRepoError(f"{repo_id}@{sha}: {name} has schema_version {record.get('schema_version')!r}")
        records.append(record | {"results_file": name})
    return records, sha


# ---------------------------------------------------------------------------------------------------------------
# Ranking


@dataclass(frozen=True)
class Group:
    """Rows that can be ranked against each other."""

    task: str
    dataset_id: str
    dataset_sha: str
    split: str
    n_dialogs: int
    protocol: str
    rows: list[dict[str, Any]]
    """Records, best headline metric first."""

    @property
    def title(self) -> str:
        return (
            f"{self.task} · {self.dataset_id}@{self.dataset_sha[:7]} {self.split} ({self.n_dialogs} dialogs) · "
            f"ROUGE protocol: {self.protocol}"
        )


def group_key(record: dict[str, Any]) -> tuple:
    dataset = record["dataset"]
    return (record["task"], dataset["id"], dataset["sha"], dataset["split"], dataset["n_dialogs"], record["protocol"])


def latest_record(
    records: Iterable[dict[str, Any]],
    system: dict[str, Any],
    *,
    group: tuple | None = None,
    task: str | None = None,
    kinds: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """The newest record whose system has every field value of `system`: in the leaderboard group `group` (see
    `group_key`), or else of `task` on its whole test split; of one of `kinds` if given. None if there is none."""

    def wanted(record: dict[str, Any]) -> bool:
        if any(record["system"].get(name) != value for name, value in system.items()):
            return False
        if kinds is not None and record["system"]["kind"] not in kinds:
            return False
        if group is not None:
            return group_key(record) == group
        dataset = record["dataset"]
        return record["task"] == task and dataset["split"] == "test" and dataset.get("limit") is None

    return max(filter(wanted, records), key=lambda record: record["created_at"], default=None)


def system_key(record: dict[str, Any]) -> str:
    """What makes two records the same system: kind, name, every revision sha, prompt, generation settings, dtype, and
    the generation backend (vLLM and transformers decode with different kernels, so their texts can differ)."""
    system = record["system"]
    key = [
        system["kind"],
        system["name"],
        system.get("model_sha"),
        system.get("adapter_sha"),
        system.get("prompt_version"),
        record.get("generation"),
        (record.get("runtime") or {}).get("dtype"),
        record.get("round_trip_summarizer"),
        record.get("scorers"),
    ]
    if system.get("backend") not in (None, "transformers"):
        # Appended only for another backend, so that the keys of the records already published stay as they were
        key.append(system["backend"])
    return json.dumps(key, sort_keys=True)


def evaluation_key(record: dict[str, Any]) -> str:
    """What makes two records the same evaluation, run twice: the dataset commit, split and size, the system
    (`system_key`), the bootstrap, and the ROUGE protocol where the task's summaries are scored under one."""
    dataset, bootstrap = record["dataset"], record["bootstrap"]
    protocol = record["protocol"] if get_task(record["task"]).prompt_task == SUMMARIZE else None
    key = [record["task"], dataset["id"], dataset["sha"], dataset["split"], dataset.get("limit"), dataset["n_dialogs"]]
    return json.dumps([*key, protocol, bootstrap["resamples"], bootstrap["seed"], system_key(record)], sort_keys=True)


def evaluated_before(records: Iterable[dict[str, Any]], record: dict[str, Any]) -> dict[str, Any] | None:
    """The newest of `records` that is the same evaluation as `record` (`evaluation_key`), or None."""
    key = evaluation_key(record)
    return max((old for old in records if evaluation_key(old) == key), key=lambda old: old["created_at"], default=None)


def headline(record: dict[str, Any]) -> float:
    """The record's headline metric, signed so that higher ranks first (missing: last)."""
    task = get_task(record["task"])
    metric = record["metrics"].get(task.headline_metric)
    return float("-inf") if metric is None else metric["value"] * (1 if task.headline_higher_is_better else -1)


def leaderboard_groups(records: Iterable[dict[str, Any]], task: str | None = None) -> list[Group]:
    """The records grouped and ranked; the latest record of each system per group. Tasks in registry order, the
    groups with most dialogs first."""
    latest: dict[tuple, dict[str, dict]] = {}
    for record in records:
        if task is not None and record["task"] != task:
            continue
        systems = latest.setdefault(group_key(record), {})
        key = system_key(record)
        if key not in systems or record["created_at"] > systems[key]["created_at"]:
            systems[key] = record
    groups = [
        Group(*key, rows=sorted(systems.values(), key=lambda record: (-headline(record), record["system"]["label"])))
        for key, systems in latest.items()
    ]
    task_order = list(TASKS)
    return sorted(
        groups, key=lambda group: (task_order.index(group.task), -group.n_dialogs, group.split, group.dataset_sha)
    )


def sorted_by(group: Group, metric: str) -> Group:
    """The group with its rows ordered by `metric` (best first; rows without it last), the headline order kept
    among equal values."""
    if metric not in get_task(group.task).leaderboard_metrics:
        raise ValueError(f"{group.task} has no leaderboard metric {metric!r}")

    def value(record: dict[str, Any]) -> float:
        estimate = record["metrics"].get(metric)
        return float("-inf") if estimate is None else estimate["value"]

    return dataclasses.replace(group, rows=sorted(group.rows, key=value, reverse=True))


def _estimate(metric: dict[str, float] | None) -> str:
    if metric is None:
        return "–"
    return f"{metric['value']:.1f} ({metric['ci_low']:.1f}–{metric['ci_high']:.1f})"


def _revisions(system: dict[str, Any]) -> str:
    parts = []
    for role in ("model", "adapter"):
        if system.get(f"{role}_id"):
            parts.append(f"{role} `{system[f'{role}_sha'][:7] if system.get(f'{role}_sha') else 'local'}`")
    return ", ".join(parts) or "–"


def markdown_table(group: Group) -> str:
    task = get_task(group.task)
    header = ["#", "System", "Type", *(task.label(metric) for metric in task.leaderboard_metrics), "N", "Revisions"]
    alignment = ["---:", "---", "---", *["---:"] * (len(header) - 4), "---"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(alignment) + "|"]
    for rank, record in enumerate(group.rows, start=1):
        system = record["system"]
        cells = [
            str(rank),
            system["label"],
            system["kind"],
            *(_estimate(record["metrics"].get(metric)) for metric in task.leaderboard_metrics),
            str(record["n_samples"]),
            _revisions(system),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_leaderboard(groups: Sequence[Group]) -> str:
    if not groups:
        return "No results yet."
    sections = []
    for group in groups:
        task = get_task(group.task)
        sections.append(
            f"### {group.title}\n\nRanked by {task.label(task.headline_metric)}; values are percentages with 95% "
            f"bootstrap intervals.\n\n{markdown_table(group)}"
        )
    return "\n\n".join(sections)


def bar_chart(groups: Sequence[Group], path: str | Path) -> Path:
    """One horizontal bar chart per group: the headline metric of each row with its bootstrap interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if not groups:
        raise ResultsRepoError("no results to chart")
    heights = [1.4 + 0.45 * len(group.rows) for group in groups]
    figure, axes = plt.subplots(
        len(groups), 1, figsize=(10, sum(heights)), gridspec_kw={"height_ratios": heights}, squeeze=False
    )
    for axis, group in zip(axes[:, 0], groups, strict=True):
        task = get_task(group.task)
        rows = list(reversed(group.rows))  # the best row on top
        metrics = [record["metrics"][task.headline_metric] for record in rows]
        values = [metric["value"] for metric in metrics]
        axis.barh(
            [record["system"]["label"] for record in rows],
            values,
            xerr=[
                [metric["value"] - metric["ci_low"] for metric in metrics],
                [metric["ci_high"] - metric["value"] for metric in metrics],
            ],
            color=[KIND_COLOURS[record["system"]["kind"]] for record in rows],
            capsize=3,
        )
        for position, metric in enumerate(metrics):
            axis.text(metric["ci_high"] + 1, position, f"{metric['value']:.1f}", va="center", fontsize=8)
        axis.set_xlim(0, 100)
        axis.set_xlabel(f"{task.label(task.headline_metric)} (%, 95% bootstrap interval)")
        axis.set_title(group.title.replace(" · ", "\n", 1), fontsize=9)
        kinds = [kind for kind in KIND_COLOURS if any(record["system"]["kind"] == kind for record in rows)]
        axis.legend(
            handles=[Patch(color=KIND_COLOURS[kind], label=kind) for kind in kinds], loc="lower right", fontsize=8
        )
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No timestamp in the PNG metadata: the same records give the same bytes.
    figure.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(figure)
    return path


# ---------------------------------------------------------------------------------------------------------------
# The card and the push


def render_card(records: Sequence[dict[str, Any]], repo_id: str):
    from huggingface_hub import DatasetCard, DatasetCardData

    groups = leaderboard_groups(records)
    card_data = DatasetCardData(
        pretty_name="dialoghub leaderboard results",
        # The details files quote the evaluated dialogs, which are tweets (CC BY-NC-SA 4.0 through tweetsumm-clean).
        license="cc-by-nc-sa-4.0",
        language=["en"],
        tags=["leaderboard", "evaluation", "dialoghub", "summarization", "dialogue-generation"],
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(CARD_TEMPLATE),
        repo_id=repo_id,
        leaderboard=markdown_leaderboard(groups),
        chart_file=CHART_FILE if groups else None,
        records=sorted(records, key=lambda record: record["created_at"], reverse=True),
        schema_version=SCHEMA_VERSION,
        kinds=list(KIND_COLOURS),
    )


def push_record(record: dict[str, Any], details: dict[str, list], repo_id: str | None = None, api=None) -> str:
    """Add `record` and its details to the results repo, with the card and chart regenerated, in one commit.

    Returns the commit sha. Nothing is pushed if anything fails before the commit."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = api or HfApi()
    repo_id = repo_id or default_results_repo()
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    results_path, details_path = record_paths(record)
    record = record | {"details_file": details_path}
    details_bytes = details_parquet(details)
    attempt = 0
    while True:
        attempt += 1
        head = api.dataset_info(repo_id).sha
        existing = load_records(repo_id, head, api)[0] if head else []
        everything = [*existing, record | {"results_file": results_path}]
        with tempfile.TemporaryDirectory(prefix="dialoghub-results-") as staging:
            chart = bar_chart(leaderboard_groups(everything), Path(staging) / CHART_FILE)
            operations = [
                CommitOperationAdd(results_path, record_json(record)),
                CommitOperationAdd(details_path, details_bytes),
                CommitOperationAdd("README.md", str(render_card(everything, repo_id)).encode("utf-8")),
                CommitOperationAdd(CHART_FILE, chart.read_bytes()),
            ]
            try:
                commit = api.create_commit(
                    repo_id,
                    operations,
                    repo_type="dataset",
                    commit_message=f"{record['task']}: {record['system']['label']}",
                    commit_description=f"{results_path}\n{details_path}",
                    parent_commit=head,
                )
            except HfHubHTTPError as error:
                if error.response is None or error.response.status_code != 412 or attempt == PUSH_ATTEMPTS:
                    raise
                logger.warning("%s moved during the push (attempt %d); retrying on the new head", repo_id, attempt)
                continue
        return commit.oid
