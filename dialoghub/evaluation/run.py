"""Evaluating one leaderboard row: a model (with an optional LoRA adapter), a baseline or the human ceiling, on a
task, configured by one `EvaluationConfig` (the fields of `evaluation/recipes/leaderboard.yaml`).

Every revision is resolved to a commit sha before anything is loaded, and the record names them all (model, adapter,
dataset, embedding model, round-trip summarizer). Generation is greedy by default and the bootstrap is seeded, so the
same revisions give the same scores.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dialoghub.core.recipes import AUTO
from dialoghub.evaluation import results
from dialoghub.evaluation.provenance import code_version, model_label, package_versions, pinned
from dialoghub.evaluation.tasks import (
    HUMAN,
    TASKS,
    TWEETSUMM_ABSTRACTIVE,
    Scorers,
    Task,
    TaskScores,
    get_task,
    reference_row,
)
from dialoghub.hub.client import repo_record
from dialoghub.metrics import DEFAULT_EMBEDDING_MODEL, PROFANITY_CHECK, PROTOCOLS
from dialoghub.metrics.scorers import load_semantic_similarity, load_toxicity
from dialoghub.models import prompts
from dialoghub.models.generation import (
    BACKENDS,
    ROUND_TRIP_GENERATION,
    GenerationSettings,
    Generator,
    load_generator,
    round_trip_summaries,
)
from dialoghub.models.loading import AS_STORED

DTYPES = (AUTO, AS_STORED, "float32", "bfloat16")
# Measured on this project's 2-core CPU (AMX): bfloat16 generates the 110 test summaries 2.1x faster than float32, with
# ROUGE-L within 0.3 points; 16 prompts per batch cost about as much per decoding step as 8.
DEFAULT_DTYPE = AUTO
DEFAULT_BATCH_SIZE = 16
DEFAULT_BOOTSTRAP = 1000


@dataclass
class EvaluationConfig:
    """One leaderboard row: what to evaluate, on which data, how to score it, and where the record goes."""

    task: str = field(
        default=TWEETSUMM_ABSTRACTIVE.name, metadata={"help": "The leaderboard task.", "choices": sorted(TASKS)}
    )
    model: str | None = field(
        default=None, metadata={"help": "Base model ID[@REV] or folder (none with an adapter: the adapter's base)."}
    )
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter ID[@REV] or folder."})
    baseline: str | None = field(
        default=None, metadata={"help": "lead, templated-lead, or human (the leave-one-out ceiling)."}
    )
    dataset: str | None = field(
        default=None, metadata={"help": "Dataset ID[@REV] (none: the task's, <org>/tweetsumm-clean)."}
    )
    split: str | None = field(default=None, metadata={"help": "Split (none: the task's, test); tune on validation."})
    limit: int | None = field(default=None, metadata={"help": "Evaluate the first N dialogs only."})
    protocol: str = field(
        default="jackknife", metadata={"help": "Multi-reference ROUGE protocol.", "choices": PROTOCOLS}
    )
    embedding_model: str | None = field(
        default=DEFAULT_EMBEDDING_MODEL,
        metadata={"help": "Semantic-similarity model ID[@REV] or folder, or none."},
    )
    toxicity: str | None = field(
        default=PROFANITY_CHECK, metadata={"help": f"{PROFANITY_CHECK}, a classifier ID[@REV], or none."}
    )
    summarizer: str | None = field(
        default=None,
        metadata={"help": "synthetic-dialogue: round-trip summarizer ID[@REV] (none: the evaluated base model)."},
    )
    summarizer_adapter: str | None = field(
        default=None, metadata={"help": "synthetic-dialogue: the round-trip summarizer's adapter ID[@REV]."}
    )
    n_bootstrap: int = field(default=DEFAULT_BOOTSTRAP, metadata={"help": "Bootstrap resamples."})
    seed: int = field(default=0, metadata={"help": "Bootstrap and sampling seed."})
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "Answer length (none: the task's, prompts.ANSWER_MAX_NEW_TOKENS)."}
    )
    generation: GenerationSettings = field(default_factory=lambda: GenerationSettings(batch_size=DEFAULT_BATCH_SIZE))
    """How to decode; its `seed` and `max_new_tokens` are the fields above."""
    backend: str = field(default="auto", metadata={"help": "Generation backend.", "choices": BACKENDS})
    dtype: str = field(
        default=DEFAULT_DTYPE,
        metadata={
            "help": "The models' dtype: auto is bfloat16 on CPUs with bf16 matrix instructions (AMX, AVX512-BF16), "
            "float32 on the others (dialoghub/core/recipes.py); as-stored keeps the checkpoint's.",
            "choices": DTYPES,
        },
    )
    threads: int | None = field(
        default=None,
        metadata={
            "help": "Torch CPU threads (none: one per core). On cores shared with other jobs, 1 thread was 3-10x "
            "faster than 2 here: every op waits for its slowest thread."
        },
    )
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})
    push: bool = field(default=True, metadata={"help": "Push the record to the results repo (false: local only)."})
    results_repo: str | None = field(
        default=None, metadata={"help": "Results dataset repo (none: <org>/dialoghub-results)."}
    )
    output_dir: str | None = field(
        default=None, metadata={"help": "Local copies (none: $DIALOGHUB_BASE_DIR/evaluations)."}
    )
    update_card: bool = field(
        default=False,
        metadata={"help": "Write the metrics as model-index and .eval_results/<task>.yaml into the adapter's repo."},
    )
    skip_if_evaluated: bool = field(
        default=False,
        metadata={
            "help": "If the results repo already holds this very evaluation (same system and revisions, dataset "
            "commit, settings, scorers and bootstrap), reuse its record and push nothing, so a rerun makes no commit."
        },
    )
    submit: bool = field(
        default=False,
        metadata={
            "help": "Submit as pull requests (results repo: record and details; model repo: .eval_results and "
            "card) for a maintainer to verify and merge, instead of pushing."
        },
    )

    @property
    def task_config(self) -> Task:
        return get_task(self.task)

    def generation_settings(self) -> GenerationSettings:
        return dataclasses.replace(
            self.generation, seed=self.seed, max_new_tokens=self.max_new_tokens or self.task_config.max_new_tokens
        )

    def check(self) -> None:
        """A `ValueError` naming what does not fit together."""
        task = self.task_config
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; expected one of {PROTOCOLS}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; expected one of {DTYPES}")
        if self.baseline is not None and (self.model or self.adapter):
            raise ValueError("give either baseline or model/adapter, not both")
        if self.baseline is None and not (self.model or self.adapter):
            raise ValueError("nothing to evaluate: give a model (and optionally an adapter) or a baseline")
        if self.baseline is not None and self.baseline not in task.reference_rows:
            raise ValueError(
                f"{self.task}: no baseline {self.baseline!r}; expected one of {list(task.reference_rows)}"
            )
        if (self.summarizer or self.summarizer_adapter) and task.prompt_task != prompts.GENERATE:
            raise ValueError(f"{self.task} needs no round-trip summarizer")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        self.check_outputs()

    def check_outputs(self) -> None:
        if self.update_card and not self.push:
            raise ValueError("update_card needs the push (push: true)")
        if self.update_card and not self.adapter:
            raise ValueError("update_card writes into the evaluated adapter's card: give --adapter")
        if self.submit and (self.update_card or self.baseline):
            raise ValueError("submit opens pull requests on the evaluated model's repo: no baseline, no update_card")


@dataclass
class Evaluation:
    record: dict[str, Any]
    """The results JSON (see `dialoghub.evaluation.results`)."""
    details: dict[str, list]
    """Per-sample columns of the details parquet."""
    reused: bool = False
    """The record is the results repo's own (`skip_if_evaluated`), not evaluated again."""


def set_threads(threads: int | None) -> dict[str, Any]:
    """Set torch's CPU threads if asked, and return the runtime record."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    return {"threads": torch.get_num_threads(), "platform": platform.platform(), "processor": platform.machine()}


def load_rows(config: EvaluationConfig) -> tuple[list[dict], dict]:
    """The first `limit` rows of the task's split, read at a resolved dataset commit, and that dataset's record."""
    from datasets import load_dataset

    task = config.task_config
    dataset_repo = repo_record(config.dataset or task.dataset_id, repo_type="dataset")
    if dataset_repo["sha"] is None:
        raise ValueError(
            f"{config.dataset}: the leaderboard reads datasets from the Hub (ID or ID@REV), not local folders"
        )
    split = config.split or task.split
    data = load_dataset(dataset_repo["id"], task.dataset_config, split=split, revision=dataset_repo["sha"])
    if config.limit is not None:
        data = data.select(range(min(config.limit, data.num_rows)))
    rows = data.to_list()
    if not rows:
        raise ValueError(f"{pinned(dataset_repo)} has no rows in split {split!r}")
    record = dataset_repo | {
        "config": task.dataset_config,
        "split": split,
        "limit": config.limit,
        "n_dialogs": len(rows),
    }
    return rows, record


def make_scorers(config: EvaluationConfig) -> tuple[Scorers, dict[str, Any]]:
    """The scoring models at resolved revisions, and their record."""
    semantic_similarity, embedding = (
        load_semantic_similarity(config.embedding_model) if config.embedding_model else (None, None)
    )
    toxicity_scorer, toxicity_record = load_toxicity(config.toxicity) if config.toxicity else (None, None)
    scorers = Scorers(
        config.protocol, semantic_similarity, toxicity_scorer, n_bootstrap=config.n_bootstrap, seed=config.seed
    )
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


@dataclass
class _System:
    """What is evaluated, loaded and described before anything is generated or scored."""

    system: dict[str, Any]
    generator: Generator | None = None
    round_trip: _TimedRoundTrip | None = None
    round_trip_record: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def dtype(self) -> str | None:
        # Generator.dtype, not `generator.model.dtype`: neither a vLLM engine nor a CPU engine has such an attribute
        return self.generator.dtype if self.generator else None


def _reference_system(config: EvaluationConfig) -> _System:
    baseline = config.baseline
    kind = results.HUMAN if baseline == HUMAN else results.BASELINE
    label = "human (leave-one-out)" if baseline == HUMAN else baseline
    return _System({"kind": kind, "name": baseline, "label": label, "prompt_version": None})


def _reference_row(config: EvaluationConfig, rows: list[dict], scorers: Scorers, evaluated: _System) -> _Row:
    started = time.perf_counter()
    scores = reference_row(config.task_config, config.baseline, rows, scorers)
    return _Row(evaluated.system, scores, scores.details, {"scoring": time.perf_counter() - started})


def _summarizer(config: EvaluationConfig, generator: Generator) -> Generator | None:
    """The round-trip summarizer of a generation task: the one asked for, else the evaluated base model alone."""
    if config.task_config.prompt_task != prompts.GENERATE:
        return None
    if config.summarizer or config.summarizer_adapter:
        return load_generator(config.summarizer, config.summarizer_adapter, backend=config.backend, dtype=config.dtype)
    if config.adapter:  # the base alone, at the very commit evaluated
        return load_generator(str(generator.base), backend=config.backend, dtype=config.dtype)
    return generator


class _TimedRoundTrip:
    """`Scorers.summarize` through the one round-trip scorer, timing what it spends."""

    def __init__(self, summarizer: Generator, progress: bool) -> None:
        self.summarizer, self.progress, self.seconds = summarizer, progress, 0.0

    def __call__(self, conversations) -> list[str]:
        started = time.perf_counter()
        summaries = round_trip_summaries(self.summarizer, conversations, progress=self.progress)
        self.seconds += time.perf_counter() - started
        return summaries


def _model_system(config: EvaluationConfig) -> _System:
    loading_started = time.perf_counter()
    generator = load_generator(config.model, config.adapter, backend=config.backend, dtype=config.dtype)
    provenance = generator.provenance()
    role = "adapter" if config.adapter else "model"
    repo_id, revision, sha = (provenance[f"{role}_{name}"] for name in ("id", "revision", "sha"))
    system = provenance | {
        "kind": results.ADAPTER if config.adapter else results.ZERO_SHOT,
        "name": repo_id,
        "label": model_label(repo_id, revision, sha) + (f" [{config.dtype}]" if config.dtype != DEFAULT_DTYPE else ""),
        "adapter_merged": generator.adapter_merged,
    }
    evaluated = _System(system, generator)
    if (summarizer := _summarizer(config, generator)) is not None:
        evaluated.round_trip = _TimedRoundTrip(summarizer, config.progress)
        evaluated.round_trip_record = summarizer.provenance() | {"generation": ROUND_TRIP_GENERATION.to_dict()}
    evaluated.timings["model_load"] = time.perf_counter() - loading_started
    return evaluated


def _model_row(config: EvaluationConfig, rows: list[dict], scorers: Scorers, evaluated: _System) -> _Row:
    task, settings, generator, round_trip = (
        config.task_config, config.generation_settings(), evaluated.generator, evaluated.round_trip
    )  # fmt: skip
    if round_trip is not None:
        scorers = dataclasses.replace(scorers, summarize=round_trip)
    timings = dict(evaluated.timings)
    docs = task.docs(rows)
    generation_started = time.perf_counter()
    completions = generator.generate(
        [doc.messages for doc in docs], settings, progress=config.progress, desc=f"{task.name} ({len(docs)} dialogs)"
    )
    timings["generation"] = time.perf_counter() - generation_started
    scoring_started = time.perf_counter()
    scores = task.score(docs, [completion.text.strip() for completion in completions], scorers)
    round_trip_seconds = round_trip.seconds if round_trip else 0.0
    if round_trip is not None:
        timings["round_trip_generation"] = round_trip_seconds
    timings["scoring"] = time.perf_counter() - scoring_started - round_trip_seconds
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
    return _Row(
        evaluated.system, scores, details, timings, settings.to_dict(), evaluated.round_trip_record, evaluated.dtype
    )


def _evaluated_before(
    config: EvaluationConfig, evaluated: _System, dataset_record: dict, scorers_record: dict
) -> Evaluation | None:
    """The results repo's record of this very evaluation, with its details, if it holds one."""
    try:
        records, sha = results.load_records(config.results_repo)
    except results.ResultsRepoError:  # nothing evaluated yet
        return None
    planned = {
        "task": config.task,
        "system": evaluated.system,
        "dataset": dataset_record,
        "protocol": config.protocol,
        "bootstrap": {"resamples": config.n_bootstrap, "seed": config.seed},
        "generation": config.generation_settings().to_dict() if evaluated.generator else None,
        "round_trip_summarizer": evaluated.round_trip_record,
        "runtime": {"dtype": evaluated.dtype},
        "scorers": scorers_record,
    }
    # A JSON round trip, so that tuples compare with the lists a stored record holds
    if (found := results.evaluated_before(records, json.loads(json.dumps(planned)))) is None:
        return None
    repo_id = config.results_repo or results.default_results_repo()
    return Evaluation(found, results.load_details(repo_id, found, sha), reused=True)


def evaluate(config: EvaluationConfig) -> Evaluation:
    """Evaluate one leaderboard row: a model (`ID[@REV]` or folder) with an optional adapter, or a baseline (`lead`,
    `templated-lead`, or `human` for the leave-one-out ceiling)."""
    started = time.perf_counter()
    config.check()
    task = config.task_config
    runtime = set_threads(config.threads)
    rows, dataset_record = load_rows(config)
    scorers, scorers_record = make_scorers(config)
    timings = {"data_load": time.perf_counter() - started}
    evaluated = _reference_system(config) if config.baseline is not None else _model_system(config)
    if config.skip_if_evaluated and (before := _evaluated_before(config, evaluated, dataset_record, scorers_record)):
        return before
    if config.baseline is not None:
        row = _reference_row(config, rows, scorers, evaluated)
    else:
        row = _model_row(config, rows, scorers, evaluated)
    timings |= row.timings
    timings["total"] = time.perf_counter() - started

    report = row.scores.report.to_dict()
    return Evaluation(
        {
            "schema_version": results.SCHEMA_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "task": config.task,
            "system": row.system,
            "dataset": dataset_record,
            # The human row is scored leave-one-out, the counterpart of the systems' protocol it is ranked under.
            "protocol": config.protocol if task.prompt_task == prompts.SUMMARIZE else report["protocol"],
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
