"""Build `org/tweetsumm-clean` from a TweetSumm source and publish it to the Hub as a versioned dataset.

`build()` reads, cleans and validates; `write_dataset_folder()` writes the repo's files (parquet with fixed settings,
so the same input always gives the same bytes, and the card); `publish()` uploads them with `upload_folder`, which
skips unchanged files, so a rebuild of the same input makes no commit, and tags the commit.
The pipeline runs `scripts/build_tweetsumm.py` (build, reject report, publish); `build_and_publish()` is the same
build-and-publish in one Python call, for a notebook or a test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from dialoghub.core.files import atomic_write, code_version
from dialoghub.core.paths import REPO_ROOT, base_dir
from dialoghub.data.cleaning import Cleaner, CleaningOptions
from dialoghub.data.parquet_repo import (
    PARQUET_COMPRESSION,
    ROW_GROUP_SIZE,
    DataFile,
    PublishResult,
    add_dataset_info,
    publish_dataset,
    size_category,
    write_parquet_files,
)
from dialoghub.data.readers import SourceData, SourceError, read_source
from dialoghub.data.records import AGENT, CUSTOMER, SPLITS, Dialog, Rejection, Turn
from dialoghub.data.validation import (
    NEAR_DUPLICATE_JACCARD,
    SHINGLE_WORDS,
    DatasetValidationError,
    NearDuplicate,
    find_near_duplicates,
    validate,
    write_rejects_report,
)

CONFIGS = ("default", "raw")
CARD_TEMPLATE = REPO_ROOT / "datasets_repo" / "tweetsumm-clean" / "README.md.j2"
# The files whose content makes the dataset: their last commit (and whether they have uncommitted changes) is the
# builder provenance on the card. Not HEAD: a commit elsewhere in the project would otherwise change the card, make a
# new dataset commit on every rebuild and move it away from its tag.
BUILDER_PATHS = ("dialoghub/data", "scripts/build_tweetsumm.py", "datasets_repo/tweetsumm-clean")
CITATION = """@inproceedings{feigenblat-etal-2021-tweetsumm-dialog,
    title = "{TWEETSUMM} - A Dialog Summarization Dataset for Customer Service",
    author = "Feigenblat, Guy  and Gunasekara, Chulaka  and Sznajder, Benjamin  and Joshi, Sachindra  and
      Konopnicki, David  and Aharonov, Ranit",
    booktitle = "Findings of the Association for Computational Linguistics: EMNLP 2021",
    month = nov,
    year = "2021",
    address = "Punta Cana, Dominican Republic",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2021.findings-emnlp.24",
    doi = "10.18653/v1/2021.findings-emnlp.24",
    pages = "245--260",
}"""


def features():
    """The explicit schema of both configs (imported lazily: `datasets` must come after `dialoghub.core.hubenv`)."""
    from datasets import Features, List, Value

    turn = {"role": Value("string"), "text": Value("string")}
    return Features(
        {
            "conversation_id": Value("string"),
            "dialogue": List(turn),
            "summaries": List(Value("string")),
            "extractive_summaries": List(List(turn)),
            "num_turns": Value("int32"),
            "num_customer_turns": Value("int32"),
            "num_agent_turns": Value("int32"),
            "dialogue_num_words": Value("int32"),
            "dialogue_num_chars": Value("int32"),
            "summaries_num_words": List(Value("int32")),
        }
    )


def _turns(turns: list[Turn]) -> list[dict]:
    return [{"role": turn.role, "text": turn.text} for turn in turns]


def to_row(dialog: Dialog) -> dict:
    dialogue_text = [turn.text for turn in dialog.dialogue]
    return {
        "conversation_id": dialog.conversation_id,
        "dialogue": _turns(dialog.dialogue),
        "summaries": list(dialog.summaries),
        "extractive_summaries": [_turns(summary) for summary in dialog.extractive_summaries],
        "num_turns": len(dialog.dialogue),
        "num_customer_turns": sum(turn.role == CUSTOMER for turn in dialog.dialogue),
        "num_agent_turns": sum(turn.role == AGENT for turn in dialog.dialogue),
        "dialogue_num_words": sum(len(text.split()) for text in dialogue_text),
        "dialogue_num_chars": sum(len(text) for text in dialogue_text),
        "summaries_num_words": [len(summary.split()) for summary in dialog.summaries],
    }


@dataclass
class BuildResult:
    source: SourceData
    options: CleaningOptions
    cleaning_steps: list[dict]
    rows: dict[str, dict[str, list[dict]]]
    """`rows[config][split]`, in source order."""
    cleaning_counts: dict[str, int]
    rejections: list[Rejection]
    """The rows left out (only non-empty with `drop_invalid=True`)."""
    near_duplicates: list[NearDuplicate]
    near_duplicate_threshold: float

    @property
    def split_sizes(self) -> dict[str, int]:
        return {split: len(rows) for split, rows in self.rows["default"].items()}


def build(
    source: str | Path,
    *,
    twcs: str | Path | None = None,
    source_revision: str | None = None,
    options: CleaningOptions | None = None,
    drop_invalid: bool = False,
    near_duplicate_threshold: float = NEAR_DUPLICATE_JACCARD,
) -> BuildResult:
    """Read, clean and validate. Raises `DatasetValidationError` listing every bad row unless `drop_invalid`."""
    data = read_source(source, twcs=twcs, revision=source_revision)
    cleaner = Cleaner(options or CleaningOptions())
    cleaned, counts = zip(*map(cleaner.clean_dialog, data.dialogs), strict=True) if data.dialogs else ((), ())
    rejections, rejected = validate(list(cleaned))
    rejections = sorted(
        data.rejections + rejections, key=lambda rejection: (rejection.location.file, rejection.location.line or 0)
    )
    if rejections and not drop_invalid:
        raise DatasetValidationError(rejections)
    kept = [index for index in range(len(cleaned)) if index not in rejected]
    if not kept:
        raise SourceError(f"{source}: no valid dialog left to publish")
    cleaning_counts = Counter({step["name"]: 0 for step in cleaner.describe()})
    for index in kept:
        cleaning_counts.update(counts[index])
    rows: dict[str, dict[str, list[dict]]] = {config: {} for config in CONFIGS}
    for index in kept:
        for config, dialog in (("default", cleaned[index]), ("raw", data.dialogs[index])):
            rows[config].setdefault(dialog.split, []).append(to_row(dialog))
    for config in CONFIGS:
        rows[config] = {split: rows[config][split] for split in SPLITS if split in rows[config]}
    near_duplicates = find_near_duplicates([cleaned[index] for index in kept], near_duplicate_threshold)
    return BuildResult(
        source=data,
        options=cleaner.options,
        cleaning_steps=cleaner.describe(),
        rows=rows,
        cleaning_counts=dict(cleaning_counts),
        rejections=rejections,
        near_duplicates=near_duplicates,
        near_duplicate_threshold=near_duplicate_threshold,
    )


# ---------------------------------------------------------------------------------------------------------------
# Files of the dataset repo


def write_dataset_folder(result: BuildResult, folder: Path, repo_id: str, tag: str | None = None) -> list[DataFile]:
    """Write `data/{config}/{split}-00000-of-00001.parquet` and the README.md card into `folder`."""
    data_files = write_parquet_files(result.rows, features(), folder)
    card = render_card(result, data_files, repo_id, tag)
    atomic_write(folder / "README.md", str(card).encode("utf-8"))
    return data_files


# ---------------------------------------------------------------------------------------------------------------
# Card


def builder_provenance() -> dict:
    """The builder's last commit, whether its files have uncommitted changes, and a digest of those files."""
    files = sorted(
        path
        for name in BUILDER_PATHS
        for path in ((REPO_ROOT / name).rglob("*") if (REPO_ROOT / name).is_dir() else [REPO_ROOT / name])
        if path.is_file() and "__pycache__" not in path.parts
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return code_version(BUILDER_PATHS) | {"code_sha256": digest.hexdigest(), "paths": list(BUILDER_PATHS)}


def _mean(values: list[float]) -> str:
    return f"{statistics.fmean(values):.1f}" if values else "-"


def split_statistics(rows: list[dict]) -> dict[str, str]:
    summary_words = [words for row in rows for words in row["summaries_num_words"]]
    turns = [row["num_turns"] for row in rows]
    return {
        "dialogs": str(len(rows)),
        "turns": f"{_mean(turns)} ({min(turns)}–{max(turns)})",
        "customer_turns": _mean([row["num_customer_turns"] for row in rows]),
        "agent_turns": _mean([row["num_agent_turns"] for row in rows]),
        "dialogue_words": _mean([row["dialogue_num_words"] for row in rows]),
        "summaries": _mean([len(row["summaries"]) for row in rows]),
        "summary_words": _mean(summary_words),
        "extractive_summaries": _mean([len(row["extractive_summaries"]) for row in rows]),
    }


def card_data(result: BuildResult, data_files: list[DataFile]):
    from huggingface_hub import DatasetCardData

    source_datasets = ["TweetSumm (IBM, github.com/guyfe/Tweetsumm)", "Customer Support on Twitter (Kaggle)"]
    if result.source.format == "dialogstudio":
        source_datasets.append("Salesforce/dialogstudio")
    card = DatasetCardData(
        pretty_name="TweetSumm (clean)",
        # The annotations are CC0 1.0, the tweets CC BY-NC-SA 4.0. Both are Hub licence ids, so a list keeps them
        # machine-readable; the card's Licence section says which applies to what (the tweets' terms bind any use).
        license=["cc0-1.0", "cc-by-nc-sa-4.0"],
        language=["en"],
        task_categories=["summarization", "text-generation"],
        size_categories=[size_category(sum(result.split_sizes.values()))],
        source_datasets=source_datasets,
        multilinguality="monolingual",
        language_creators=["found"],
        tags=["dialogue-summarization", "customer-support", "twitter", "tweetsumm"],
    )
    add_dataset_info(card, data_files, features(), CONFIGS)
    return card


def render_card(result: BuildResult, data_files: list[DataFile], repo_id: str, tag: str | None):
    from huggingface_hub import DatasetCard

    rejected_ids = sorted({rejection.conversation_id for rejection in result.rejections if rejection.conversation_id})
    summary_counts = [len(row["summaries"]) for rows in result.rows["default"].values() for row in rows]
    return DatasetCard.from_template(
        card_data(result, data_files),
        template_path=str(CARD_TEMPLATE),
        repo_id=repo_id,
        tag=tag,
        statistics={
            config: {split: split_statistics(rows) for split, rows in splits.items()}
            for config, splits in result.rows.items()
        },
        cleaning_steps=[{**step, "changes": result.cleaning_counts[step["name"]]} for step in result.cleaning_steps],
        options=dataclasses.asdict(result.options),
        rejections=len(result.rejections),
        rejected_ids=rejected_ids,
        near_duplicates=result.near_duplicates,
        near_duplicate_threshold=result.near_duplicate_threshold,
        shingle_words=SHINGLE_WORDS,
        source=result.source,
        builder=builder_provenance(),
        summary_counts=(min(summary_counts), max(summary_counts)),
        parquet={"pyarrow": pa.__version__, "row_group_size": ROW_GROUP_SIZE, "compression": PARQUET_COMPRESSION},
        data_files=data_files,
        citation=CITATION,
    )


# ---------------------------------------------------------------------------------------------------------------
# Publishing


def publish(result: BuildResult, repo_id: str, *, tag: str | None = None, api=None) -> PublishResult:
    """Upload the build to the dataset repo `repo_id`; with `tag`, tag the commit if the tag is missing (see
    `publish_dataset` for what happens when the tag exists)."""
    sizes = ", ".join(f"{split} {size}" for split, size in result.split_sizes.items())
    return publish_dataset(
        lambda folder: write_dataset_folder(result, folder, repo_id, tag),
        repo_id,
        tag=tag,
        commit_message=f"Build tweetsumm-clean ({sizes})",
        commit_description=f"Source: {result.source.description}.",
        api=api,
    )


def build_and_publish(
    source: str | Path,
    repo_id: str,
    *,
    tag: str | None = None,
    drop_invalid: bool = False,
    rejects_report: str | Path | None = None,
    **build_options,
) -> str:
    """Build from `source` and publish to `repo_id`; returns the commit sha the dataset is at."""
    result = build(source, drop_invalid=drop_invalid, **build_options)
    if drop_invalid:
        write_rejects_report(result.rejections, Path(rejects_report or default_rejects_report(repo_id)))
    return publish(result, repo_id, tag=tag).commit


def default_rejects_report(repo_id: str) -> Path:
    return base_dir() / "builds" / repo_id / "rejects.jsonl"
