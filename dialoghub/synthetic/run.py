"""Generate dialogues from summaries, filter them, and keep every row (kept or rejected) in a resumable store.

Candidates are (source conversation, summary) pairs of a source split, shuffled with the seed and cut into fixed
chunks of `batch_size`; each output split is filled chunk by chunk until it has its target of kept rows. A chunk is
one generation batch and one shard, seeded from (seed, split, chunk), so a resumed run regenerates exactly what the
killed one was generating, and its rows are the ones an uninterrupted run writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialoghub.core.paths import base_dir, project_org
from dialoghub.hub.client import RELEASE_TAG, resolve_repo
from dialoghub.metrics.rouge import rouge_per_sample
from dialoghub.metrics.semantic import DEFAULT_EMBEDDING_MODEL
from dialoghub.metrics.toxicity import load_toxicity_scorer
from dialoghub.models import prompts
from dialoghub.models.base_models import SMOLLM2
from dialoghub.models.generation import (
    ROUND_TRIP_GENERATION,
    GenerationSettings,
    Generator,
    load_generator,
    round_trip_summaries,
)
from dialoghub.synthetic import comparison, filters
from dialoghub.synthetic.closeness import closeness_to_real
from dialoghub.synthetic.shards import ShardStore, run_key

logger = logging.getLogger(__name__)

DEFAULT_SPLITS = {"train": 200, "validation": 50, "test": 50}
DEFAULT_SOURCE = f"{project_org()}/tweetsumm-clean"
DEFAULT_MODEL = f"{SMOLLM2.repo_id}@{RELEASE_TAG}"
DEFAULT_GENERATOR_ADAPTER = f"{project_org()}/dialogue-generator-lora"
DEFAULT_SUMMARIZER_ADAPTER = f"{project_org()}/summarizer-lora"
# Sampling, not greedy: greedy decoding of a small model loops within a few turns and gives every summary's
# dialogue the same opening; the loop detector stops what still loops.
DEFAULT_GENERATION = GenerationSettings(
    max_new_tokens=256, do_sample=True, temperature=0.7, top_p=0.9, repetition_penalty=1.1, stop_loops=3, batch_size=8
)
KEPT = "kept"
REJECTED = "rejected"


@dataclass
class SyntheticConfig:
    """What to generate from, with what, and how to filter it. `model`/`adapter`/`summarizer` take `ID[@REV]`."""

    source: str = field(default=DEFAULT_SOURCE, metadata={"help": "Dataset repo ID[@REV] holding the summaries."})
    source_revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of source."})
    source_config: str | None = field(default=None, metadata={"help": "Dataset config of source."})
    summary_column: str = field(
        default="summaries",
        metadata={
            "help": "A string column, or a list-of-strings column (each summary a candidate, see all_summaries)."
        },
    )
    id_column: str = field(default="conversation_id", metadata={"help": "The source's conversation id column."})
    dialogue_column: str = field(
        default="dialogue", metadata={"help": "The real dialogs: few-shot examples and the closeness figures."}
    )
    all_summaries: bool = field(
        default=True, metadata={"help": "One candidate per summary of a row (false: its first summary only)."}
    )
    splits: dict[str, int] = field(
        default_factory=lambda: dict(DEFAULT_SPLITS),
        metadata={"help": "Output split -> number of kept rows wanted, e.g. train=20,validation=5,test=5."},
    )
    source_splits: dict[str, str] | None = field(
        default=None,
        metadata={"help": "Output split -> source split of its summaries (none: the same name), e.g. test=valid."},
    )
    model: str | None = field(
        default=DEFAULT_MODEL, metadata={"help": "Causal LM ID[@REV] or folder (none: the adapter's base)."}
    )
    adapter: str | None = field(default=None, metadata={"help": "PEFT adapter ID[@REV] or folder, or none."})
    load_in_4bit: bool = field(default=False, metadata={"help": "Quantize the model with bitsandbytes (GPU)."})
    few_shot: int = field(default=0, metadata={"help": "Examples from few_shot_split in each prompt."})
    few_shot_split: str = field(default="train", metadata={"help": "Source split the few-shot examples come from."})
    few_shot_max_words: int | None = field(
        default=150,
        metadata={
            "help": "Draw examples among the dialogues of at most this many words (none: any). A model imitates its "
            "example's length, and long examples make long prompts and answers that max_new_tokens then cuts."
        },
    )
    seed: int = field(
        default=0, metadata={"help": "One seed for the run: candidate order, few-shot draws, per-batch sampling."}
    )
    generation: GenerationSettings = DEFAULT_GENERATION
    """Its `seed` is replaced by the run's `seed`; each batch is sampled with a seed derived from it."""
    filters: filters.FilterConfig = field(default_factory=filters.FilterConfig)
    toxicity_scorer: str = field(
        default="profanity-check", metadata={"help": "profanity-check, or a toxicity classifier ID[@REV]."}
    )
    summarizer: str | None = field(
        default=None,
        metadata={"help": "Round-trip summarizer base model ID[@REV] (none: with summarizer_adapter, its base)."},
    )
    summarizer_adapter: str | None = field(
        default=None, metadata={"help": "Round-trip summarizer adapter ID[@REV], or none."}
    )
    backend: str = field(default="auto", metadata={"help": "auto, transformers or vllm (used only if installed)."})
    compare_split: str | None = field(
        default=None,
        metadata={
            "help": "With an adapter: an output split whose first compare_samples summaries the base model also "
            "writes, with baseline_few_shot examples, through the same filters (none: no comparison)."
        },
    )
    compare_samples: int = field(default=32, metadata={"help": "Summaries of compare_split both generators write."})
    baseline_few_shot: int = field(default=1, metadata={"help": "Worked examples in the baseline's prompts."})
    closeness: bool = field(
        default=True,
        metadata={"help": "Measure how close the published dialogues are to the real dialogs of their sources."},
    )
    embedding_model: str | None = field(
        default=f"{DEFAULT_EMBEDDING_MODEL}@{RELEASE_TAG}",
        metadata={"help": "Sentence-embedding model ID[@REV] or folder for the closeness MAUVE (none: no MAUVE)."},
    )

    def __post_init__(self) -> None:
        # One seed for the whole run: candidate order, few-shot draws and (per batch) sampling.
        self.generation = dataclasses.replace(self.generation, seed=self.seed)

    def source_split_of(self, split: str) -> str:
        return (self.source_splits or {}).get(split, split)

    def check(self) -> None:
        if not self.splits or any(count < 1 for count in self.splits.values()):
            raise ValueError(f"every output split needs a target of at least 1 row, got {self.splits}")
        sources = [self.source_split_of(split) for split in self.splits]
        if len(set(sources)) != len(sources):
            raise ValueError(
                f"output splits {list(self.splits)} take their summaries from source splits {sources}: two output "
                "splits sharing a source split could get the same conversation, so each needs its own"
            )
        if self.few_shot < 0:
            raise ValueError(f"few_shot must be >= 0, got {self.few_shot}")
        if self.comparing:
            if self.compare_split not in self.splits:
                raise ValueError(f"compare_split {self.compare_split!r} is not an output split of {self.splits}")
            if self.model is None:
                raise ValueError("the comparison with the base model needs `model` (the adapter's base)")
            if self.compare_samples < 1:
                raise ValueError(f"compare_samples must be >= 1, got {self.compare_samples}")

    @property
    def comparing(self) -> bool:
        return bool(self.compare_split and self.adapter)

    @property
    def round_trip(self) -> bool:
        return bool(self.summarizer or self.summarizer_adapter)


@dataclass(frozen=True)
class Candidate:
    source_conversation_id: str
    summary_index: int
    summary: str

    @property
    def key(self) -> str:
        return f"{self.source_conversation_id}#{self.summary_index}"

    @property
    def conversation_id(self) -> str:
        return f"synthetic-{self.source_conversation_id}-{self.summary_index}"


def default_few_shot(adapter: str | None) -> int:
    """1 example for a bare instruct model, which rarely keeps the `Customer:`/`Agent:` format without one; 0 with
    an adapter, which was trained on the zero-shot prompt."""
    return 0 if adapter else 1


def repo_exists(repo_id: str, repo_type: str = "model") -> bool:
    from huggingface_hub import HfApi

    return HfApi().repo_exists(repo_id, repo_type=repo_type)


def resolve_auto(value: str | None, default_repo: str) -> str | None:
    """`"auto"` -> `default_repo` if it is on the Hub, else None; anything else unchanged."""
    if value != "auto":
        return value
    found = repo_exists(default_repo)
    logger.info("%s %s", default_repo, "found: using it" if found else "not on the Hub: going without it")
    return default_repo if found else None


def candidates_of(rows, config: SyntheticConfig, source_name: str) -> list[Candidate]:
    """Every (conversation, summary) of a source split, in the seeded order the run consumes them."""
    found = []
    for position, row in enumerate(rows):
        where = f"{source_name}, row {position}"
        conversation_id = row.get(config.id_column)
        if conversation_id is None or conversation_id == "":
            raise ValueError(f"{where}: no {config.id_column!r}")
        value = row[config.summary_column]
        summaries = [value] if isinstance(value, str) else list(value or [])
        if not config.all_summaries:
            summaries = summaries[:1]
        if not summaries:
            raise ValueError(
                f"{where} ({config.id_column} {conversation_id}): no summary in {config.summary_column!r}"
            )
        for index, summary in enumerate(summaries):
            if not isinstance(summary, str) or not summary.strip():
                raise ValueError(f"{where} ({config.id_column} {conversation_id}): summary #{index} is empty")
            found.append(Candidate(str(conversation_id), index, " ".join(summary.split())))
    random.Random(f"{config.seed}:{source_name}").shuffle(found)
    return found


def _stable_seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:4], "big")


class FewShotPool:
    def __init__(self, rows, config: SyntheticConfig) -> None:
        self.config = config
        self.rows = [
            {
                "id": str(row[config.id_column]),
                "summaries": [row[config.summary_column]]
                if isinstance(row[config.summary_column], str)
                else list(row[config.summary_column]),
                "dialogue": row[config.dialogue_column],
            }
            for row in rows
            if config.few_shot_max_words is None
            or sum(len(turn["text"].split()) for turn in row[config.dialogue_column]) <= config.few_shot_max_words
        ]
        if len(self.rows) <= config.few_shot:
            raise ValueError(
                f"{config.few_shot}-shot needs more than {len(self.rows)} dialogues of at most "
                f"{config.few_shot_max_words} words in the few-shot split"
            )

    def draw(self, candidate: Candidate) -> list[dict]:
        """k examples for one candidate, never its own conversation; the same candidate always gets the same."""
        rng = random.Random(_stable_seed(self.config.seed, "few-shot", candidate.key))
        picked = [
            row
            for row in rng.sample(self.rows, self.config.few_shot + 1)
            if row["id"] != candidate.source_conversation_id
        ]
        return [
            {"id": row["id"], "summary": rng.choice(row["summaries"]), "dialogue": row["dialogue"]}
            for row in picked[: self.config.few_shot]
        ]


@dataclass
class RunResult:
    config: SyntheticConfig
    provenance: dict[str, Any]
    work_dir: Path
    rows: dict[str, list[dict]]
    """Every generated row by split, in generation order, each with its `status` and `reasons`."""
    source_sizes: dict[str, int]
    """Candidates available per output split."""
    comparison: dict | None = None
    """The generator against the base model with worked examples (`comparison.compare`), when asked for."""
    closeness: dict | None = None
    """The published dialogues against the real ones of their sources (`closeness.closeness_to_real`), when asked
    for."""

    def kept(self, split: str) -> list[dict]:
        """The rows published in the default config: the first `target` kept rows."""
        return [row for row in self.rows[split] if row["status"] == KEPT][: self.config.splits[split]]

    def rejected(self, split: str) -> list[dict]:
        return [row for row in self.rows[split] if row["status"] == REJECTED]

    def surplus(self, split: str) -> int:
        """Kept rows beyond the target (the last batch can overshoot), left unpublished."""
        return sum(row["status"] == KEPT for row in self.rows[split]) - len(self.kept(split))

    def all_rows(self) -> list[dict]:
        return [row for rows in self.rows.values() for row in rows]


class DialogueFactory:
    """The models and the per-chunk work: generate, filter, score."""

    def __init__(self, config: SyntheticConfig, generator: Generator, summarizer: Generator | None) -> None:

        self.config = config
        self.generator = generator
        self.summarizer = summarizer
        self.toxicity = load_toxicity_scorer(config.toxicity_scorer)
        self.duplicates = filters.DuplicateIndex(config.filters.near_duplicate_jaccard)

    def remember(self, rows: list[dict]) -> None:
        for row in rows:
            if row["status"] == KEPT:
                self.duplicates.add(row["conversation_id"], row["dialogue"])

    def make_rows(self, split: str, chunk: int, candidates: list[Candidate], pool: FewShotPool | None) -> list[dict]:
        config = self.config
        examples = [pool.draw(candidate) if pool else [] for candidate in candidates]
        conversations = [
            prompts.generate_messages_few_shot(
                candidate.summary, [(example["summary"], example["dialogue"]) for example in shots]
            )
            for candidate, shots in zip(candidates, examples, strict=True)
        ]
        seed = _stable_seed(config.seed, split, chunk)
        settings = dataclasses.replace(config.generation, seed=seed, batch_size=len(candidates))
        completions = self.generator.generate(conversations, settings, sort_by_length=False, progress=False)
        rows = []
        for candidate, shots, completion in zip(candidates, examples, completions, strict=True):
            parsed = filters.check_dialogue(
                completion.text,
                candidate.summary,
                config.filters,
                stop_reason=completion.stop_reason,
                examples=[shot["dialogue"] for shot in shots],
            )
            rows.append(
                {
                    "conversation_id": candidate.conversation_id,
                    "source_conversation_id": candidate.source_conversation_id,
                    "source_summary_index": candidate.summary_index,
                    "summary": candidate.summary,
                    "few_shot_ids": [shot["id"] for shot in shots],
                    "seed": seed,
                    "raw_text": completion.text,
                    "stop_reason": completion.stop_reason,
                    "prompt_tokens": completion.prompt_tokens,
                    "new_tokens": completion.new_tokens,
                    "dialogue": parsed.dialogue,
                    "quotes_stripped": parsed.quotes_stripped,
                    "trailing_text_dropped": bool(parsed.trailing_text),
                    "reasons": parsed.reasons,
                    "details": parsed.details,
                    "toxicity": None,
                    "round_trip_summary": None,
                    "round_trip_rouge_l": None,
                    "duplicate_of": None,
                }
            )
        self._score_toxicity(rows)
        self._round_trip([row for row in rows if not row["reasons"]])
        for row in rows:
            if not row["reasons"] and (duplicate := self.duplicates.find(row["dialogue"])):
                reason, other, jaccard = duplicate
                row["reasons"].append(reason)
                row["details"].append(f"{reason}: of {other} (Jaccard {jaccard:.2f})")
                row["duplicate_of"] = other
            row["status"] = REJECTED if row["reasons"] else KEPT
            self.remember([row])
        return rows

    def _score_toxicity(self, rows: list[dict]) -> None:
        scored = [row for row in rows if row["dialogue"]]
        texts = [turn["text"] for row in scored for turn in row["dialogue"]]
        scores = iter(self.toxicity(texts))
        threshold = self.config.filters.toxicity_threshold
        for row in scored:
            row["toxicity"] = max(next(scores) for _ in row["dialogue"])
            if not row["reasons"] and row["toxicity"] >= threshold:
                row["reasons"].append(filters.TOXICITY)
                row["details"].append(f"{filters.TOXICITY}: {row['toxicity']:.2f} >= {threshold}")

    def _round_trip(self, rows: list[dict]) -> None:
        if self.summarizer is None or not rows:
            return

        conversations = [prompts.summarize_messages(row["dialogue"], row["conversation_id"]) for row in rows]
        summaries = round_trip_summaries(self.summarizer, conversations)
        scores = rouge_per_sample(summaries, [[row["summary"]] for row in rows], protocol="max")["rougeL"]
        minimum = self.config.filters.round_trip_min_rouge_l
        for row, summary, score in zip(rows, summaries, scores, strict=True):
            row["round_trip_summary"], row["round_trip_rouge_l"] = summary, score
            if score < minimum:
                row["reasons"].append(filters.ROUND_TRIP)
                row["details"].append(f"{filters.ROUND_TRIP}: ROUGE-L {score:.3f} < {minimum}")


def load_source(config: SyntheticConfig):
    from datasets import load_dataset

    source = resolve_repo(config.source, config.source_revision, repo_type="dataset")
    dataset = load_dataset(source.repo_id, config.source_config, revision=source.load_revision)
    name = str(source)
    needed = {config.source_split_of(split) for split in config.splits}
    uses_examples = config.few_shot or (config.comparing and config.baseline_few_shot)
    if uses_examples:
        needed.add(config.few_shot_split)
    reads_dialogues = {config.few_shot_split} if uses_examples else set()
    if config.closeness:
        reads_dialogues |= {config.source_split_of(split) for split in config.splits}
    if missing := sorted(needed - set(dataset)):
        raise ValueError(f"{name} has no split {missing} (it has {sorted(dataset)}); map splits with source_splits")
    for split in sorted(needed):
        columns = set(dataset[split].column_names)
        wanted = {config.id_column, config.summary_column}
        if split in reads_dialogues:
            wanted.add(config.dialogue_column)
        if missing := sorted(wanted - columns):
            raise ValueError(f"{name} split {split!r} has no column {missing} (it has {sorted(columns)})")
    return source, dataset


def run_provenance(config: SyntheticConfig, source, generator: Generator, summarizer: Generator | None) -> dict:
    """Everything that determines the rows: it names the work directory, and the card prints it."""
    return {
        "source": {"repo_id": source.repo_id, "revision": source.revision, "sha": source.sha,
                   "config": config.source_config, "summary_column": config.summary_column,
                   "id_column": config.id_column, "all_summaries": config.all_summaries,
                   "splits": {split: config.source_split_of(split) for split in config.splits}},
        "targets": dict(config.splits),
        "generator": generator.provenance(),
        "few_shot": {"k": config.few_shot, "split": config.few_shot_split, "max_words": config.few_shot_max_words}
        if config.few_shot
        else {"k": 0},
        "seed": config.seed,
        "generation": config.generation.to_dict(),
        "filters": config.filters.to_dict(),
        "filters_version": filters.FILTERS_VERSION,
        "toxicity_scorer": config.toxicity_scorer,
        "round_trip": {"summarizer": summarizer.provenance(), "generation": ROUND_TRIP_GENERATION.to_dict()}
        if summarizer else None,
    }  # fmt: skip


def default_work_dir(provenance: dict) -> Path:
    return base_dir() / "synthetic" / run_key(provenance)


def generate_dialogues(
    config: SyntheticConfig, work_dir: str | Path | None = None, progress: bool = True
) -> RunResult:
    """Fill every output split up to its target (or until its candidates run out), resuming from `work_dir`."""
    from tqdm.auto import tqdm

    config.check()
    source, dataset = load_source(config)
    generator = load_generator(config.model, config.adapter, backend=config.backend, load_in_4bit=config.load_in_4bit)
    summarizer = (
        load_generator(config.summarizer, config.summarizer_adapter, backend=config.backend)
        if config.round_trip
        else None
    )
    provenance = run_provenance(config, source, generator, summarizer)
    store = ShardStore(work_dir or default_work_dir(provenance), provenance)
    logger.info("Work directory: %s", store.directory)
    factory = DialogueFactory(config, generator, summarizer)
    pool = FewShotPool(dataset[config.few_shot_split], config) if config.few_shot else None
    rows: dict[str, list[dict]] = {}
    source_sizes = {}
    for split, target in config.splits.items():
        source_split = config.source_split_of(split)
        candidates = candidates_of(dataset[source_split], config, f"{source}:{source_split}")
        source_sizes[split] = len(candidates)
        batch_size = config.generation.batch_size
        chunks = [candidates[start : start + batch_size] for start in range(0, len(candidates), batch_size)]
        rows[split] = []
        kept = 0
        with tqdm(total=target, desc=f"{split}: kept", unit="dialogue", disable=not progress) as bar:
            for chunk, chunk_candidates in enumerate(chunks):
                if kept >= target:
                    break
                chunk_rows = chunk_rows_of(store, factory, split, chunk, chunk_candidates, pool)
                rows[split] += chunk_rows
                new = min(sum(row["status"] == KEPT for row in chunk_rows), target - kept)
                kept += new
                bar.update(new)
                bar.set_postfix(generated=len(rows[split]), rejected=len(rows[split]) - kept)
        if kept < target:
            logger.warning("%s: only %d of %d rows kept; the source split has no more summaries", split, kept, target)
    result = RunResult(config, provenance, store.directory, rows, source_sizes)
    if config.comparing:
        result.comparison = compare_with_baseline(config, source, dataset, store, factory, summarizer, rows)
    if config.closeness:
        published = {split: result.kept(split) for split in config.splits}
        source_record = {"repo_id": source.repo_id, "revision": source.revision, "sha": source.sha}
        result.closeness = closeness_to_real(published, dataset, config, source_record)
    return result


def chunk_rows_of(store: ShardStore, factory, split: str, chunk: int, candidates: list[Candidate], pool) -> list[dict]:
    """A chunk's rows: from its shard if a run already wrote it, else generated, filtered and written."""
    if store.has(split, chunk):
        rows = store.read(split, chunk)
        factory.remember(rows)
        return rows
    rows = factory.make_rows(split, chunk, candidates, pool)
    store.write(split, chunk, rows)
    return rows


def compare_with_baseline(
    config: SyntheticConfig, source, dataset, store: ShardStore, factory, summarizer, rows: dict[str, list[dict]]
) -> dict:
    """The run's generator and the base model with worked examples on the first `compare_samples` summaries of
    `compare_split`. The generator's side is the run's own rows (its chunks continued if the run stopped earlier);
    the baseline's chunks are shards of their own, so a resumed run reuses them too."""
    split, source_split = config.compare_split, config.source_split_of(config.compare_split)
    candidates = candidates_of(dataset[source_split], config, f"{source}:{source_split}")
    wanted = min(config.compare_samples, len(candidates))
    size = config.generation.batch_size
    generator_rows = list(rows[split])
    while len(generator_rows) < wanted:
        chunk = len(generator_rows) // size
        generator_rows += chunk_rows_of(
            store, factory, split, chunk, candidates[chunk * size : (chunk + 1) * size], None
        )
    baseline = comparison.baseline_config(config)
    baseline_generator = load_generator(config.model, None, backend=config.backend, load_in_4bit=config.load_in_4bit)
    baseline_factory = DialogueFactory(baseline, baseline_generator, summarizer)
    pool = FewShotPool(dataset[config.few_shot_split], baseline) if baseline.few_shot else None
    baseline_rows = []
    for chunk, start in enumerate(range(0, wanted, size)):
        baseline_rows += chunk_rows_of(
            store, baseline_factory, split + comparison.BASELINE_SUFFIX, chunk, candidates[start : start + size], pool
        )
    found = comparison.compare(generator_rows[:wanted], baseline_rows[:wanted], seed=config.seed)
    return found | comparison.comparison_provenance(config, baseline_generator)


LATER_STAGES = ((filters.TOXICITY,), (filters.ROUND_TRIP,), (filters.EXACT_DUPLICATE, filters.NEAR_DUPLICATE))
ALWAYS_CHECKED = (filters.ROLE_PARSE, filters.TRUNCATED)


def filter_counts(rows: list[dict]) -> list[dict]:
    """Per filter, in order: the rows it examined and the rows it rejected.

    A row is checked by every text filter (all the ones it breaks are listed), except that an unparsable text gets
    only the parse and truncation checks. Toxicity, round trip and duplicates each see only the rows that passed
    everything before them.
    """
    parsed = [row for row in rows if filters.ROLE_PARSE not in row["reasons"]]
    counts = [(name, rows if name in ALWAYS_CHECKED else parsed) for name in filters.TEXT_FILTERS]
    earlier = set(filters.TEXT_FILTERS)
    for stage in LATER_STAGES:
        examined = [row for row in rows if not earlier & set(row["reasons"])]
        counts += [(name, examined) for name in stage]
        earlier |= set(stage)
    return [
        {
            "name": name,
            "description": filters.FILTERS[name],
            "examined": len(examined),
            "rejected": sum(name in row["reasons"] for row in examined),
        }
        for name, examined in counts
    ]


def stop_reasons(rows: list[dict]) -> dict[str, int]:
    return dict(sorted(Counter(row["stop_reason"] for row in rows).items()))
