"""The synthetic-dialogues dataset repo: deterministic parquet for the `default` and `rejected` configs, the card
with every filter count, and the tagged push (the same rows re-pushed make no new commit)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pyarrow as pa

from dialoghub.core.files import atomic_write
from dialoghub.core.paths import REPO_ROOT
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
from dialoghub.models import prompts
from dialoghub.synthetic import filters
from dialoghub.synthetic.closeness import FEATURE_LABELS
from dialoghub.synthetic.comparison import COMPARED_METRICS
from dialoghub.synthetic.run import RunResult, filter_counts, stop_reasons

CONFIGS = ("default", "rejected")
CARD_TEMPLATE = REPO_ROOT / "datasets_repo" / "synthetic-dialogues" / "README.md.j2"
DATA_LICENSE = "cc-by-nc-sa-4.0"


class NothingToPublishError(RuntimeError):
    """A split has no row that passed the filters; nothing was pushed."""


def features():
    """One schema for both configs (a rejected row has an empty or partial dialogue and its reasons)."""
    from datasets import Features, List, Value

    return Features(
        {
            "conversation_id": Value("string"),
            "dialogue": List({"role": Value("string"), "text": Value("string")}),
            "summary": Value("string"),
            "summaries": List(Value("string")),
            "num_turns": Value("int32"),
            "num_customer_turns": Value("int32"),
            "num_agent_turns": Value("int32"),
            "dialogue_num_words": Value("int32"),
            "source_dataset": Value("string"),
            "source_revision": Value("string"),
            "source_conversation_id": Value("string"),
            "source_summary_index": Value("int32"),
            "model_id": Value("string"),
            "model_revision": Value("string"),
            "adapter_id": Value("string"),
            "adapter_revision": Value("string"),
            "prompt_version": Value("string"),
            "few_shot_ids": List(Value("string")),
            "generation_config": Value("string"),
            "seed": Value("int64"),
            "raw_text": Value("string"),
            "stop_reason": Value("string"),
            "toxicity": Value("float64"),
            "round_trip_summary": Value("string"),
            "round_trip_rouge_l": Value("float64"),
            "reasons": List(Value("string")),
            "details": List(Value("string")),
            "duplicate_of": Value("string"),
        }
    )


def to_record(row: dict, result: RunResult) -> dict:
    provenance = result.provenance
    generator = provenance["generator"]
    dialogue = row["dialogue"]
    return {
        "conversation_id": row["conversation_id"],
        "dialogue": dialogue,
        "summary": row["summary"],
        "summaries": [row["summary"]],
        "num_turns": len(dialogue),
        "num_customer_turns": sum(turn["role"] == prompts.CUSTOMER for turn in dialogue),
        "num_agent_turns": sum(turn["role"] == prompts.AGENT for turn in dialogue),
        "dialogue_num_words": sum(len(turn["text"].split()) for turn in dialogue),
        "source_dataset": provenance["source"]["repo_id"],
        "source_revision": provenance["source"]["sha"],
        "source_conversation_id": row["source_conversation_id"],
        "source_summary_index": row["source_summary_index"],
        "model_id": generator["model_id"],
        "model_revision": generator["model_sha"],
        "adapter_id": generator["adapter_id"],
        "adapter_revision": generator["adapter_sha"],
        "prompt_version": generator["prompt_version"],
        "few_shot_ids": row["few_shot_ids"],
        "generation_config": json.dumps(provenance["generation"], sort_keys=True),
        "seed": row["seed"],
        "raw_text": row["raw_text"],
        "stop_reason": row["stop_reason"],
        "toxicity": row["toxicity"],
        "round_trip_summary": row["round_trip_summary"],
        "round_trip_rouge_l": row["round_trip_rouge_l"],
        "reasons": row["reasons"],
        "details": row["details"],
        "duplicate_of": row["duplicate_of"],
    }


def published_rows(result: RunResult) -> dict[str, dict[str, list[dict]]]:
    """`rows[config][split]`; a split without rejected rows is left out of `rejected`."""
    empty = [split for split in result.config.splits if not result.kept(split)]
    if empty:
        raise NothingToPublishError(
            f"no generated dialogue passed the filters in split(s) {empty} (see {result.work_dir}); nothing pushed"
        )
    rows = {
        "default": {split: [to_record(row, result) for row in result.kept(split)] for split in result.config.splits},
        "rejected": {
            split: [to_record(row, result) for row in result.rejected(split)]
            for split in result.config.splits
            if result.rejected(split)
        },
    }
    return {config: splits for config, splits in rows.items() if splits}


def card_data(rows: dict[str, dict[str, list[dict]]], data_files: list[DataFile], result: RunResult):
    from huggingface_hub import DatasetCardData

    source = result.provenance["source"]["repo_id"]
    card = DatasetCardData(
        pretty_name="Synthetic customer-support dialogues",
        license=DATA_LICENSE,
        language=["en"],
        task_categories=["text-generation", "summarization"],
        size_categories=[size_category(sum(len(split_rows) for split_rows in rows["default"].values()))],
        source_datasets=[source],
        multilinguality="monolingual",
        language_creators=["machine-generated"],
        annotations_creators=["machine-generated"],
        tags=["synthetic", "dialogue", "customer-support", "dialogue-summarization", "tweetsumm"],
    )
    add_dataset_info(card, data_files, features(), list(rows))
    return card


def model_license(generator: dict) -> str | None:
    """The licence in the generator model's card metadata at the commit used (None for a local folder)."""
    if generator["model_sha"] is None:
        return None
    from huggingface_hub import HfApi

    info = HfApi().model_info(generator["model_id"], revision=generator["model_sha"])
    license_id = (info.card_data or {}).get("license") if info.card_data else None
    return str(license_id) if license_id else None


def _mean(values: list[float]) -> str:
    return f"{statistics.fmean(values):.1f}" if values else "-"


def split_statistics(result: RunResult, split: str, published: list[dict]) -> dict:
    generated = result.rows[split]
    return {
        "target": result.config.splits[split],
        "candidates": result.source_sizes[split],
        "generated": len(generated),
        "kept": sum(row["status"] == "kept" for row in generated),
        "published": len(published),
        "rejected": len(result.rejected(split)),
        "surplus": result.surplus(split),
        "turns": _mean([row["num_turns"] for row in published]),
        "words": _mean([row["dialogue_num_words"] for row in published]),
        "round_trip": _mean(
            [100 * row["round_trip_rouge_l"] for row in published if row["round_trip_rouge_l"] is not None]
        ),
    }


def example_prompt(result: RunResult) -> list[dict]:
    """The messages of the generate prompt, with placeholders where each row's summary (and examples) go."""
    k = result.config.few_shot
    placeholder_dialogue = [
        {"role": prompts.CUSTOMER, "text": "<example dialogue, one turn per line>"},
        {"role": prompts.AGENT, "text": "..."},
    ]
    return prompts.generate_messages_few_shot(
        "<summary>", [(f"<example summary {i + 1}>", placeholder_dialogue) for i in range(k)]
    )


def render_card(result: RunResult, rows, data_files: list[DataFile], repo_id: str, tag: str | None):
    from huggingface_hub import DatasetCard

    all_rows = result.all_rows()
    reasons = {}
    for row in all_rows:
        for reason in row["reasons"]:
            reasons[reason] = reasons.get(reason, 0) + 1
    return DatasetCard.from_template(
        card_data(rows, data_files, result),
        template_path=str(CARD_TEMPLATE),
        repo_id=repo_id,
        tag=tag,
        provenance=result.provenance,
        targets=result.config.splits,
        statistics={split: split_statistics(result, split, rows["default"][split]) for split in result.config.splits},
        totals={
            "generated": len(all_rows),
            "kept": sum(row["status"] == "kept" for row in all_rows),
            "published": sum(len(split_rows) for split_rows in rows["default"].values()),
            "rejected": sum(row["status"] == "rejected" for row in all_rows),
            "quotes_stripped": sum(row["quotes_stripped"] for row in all_rows),
            "trailing_text_dropped": sum(row["trailing_text_dropped"] for row in all_rows),
        },
        filter_counts=filter_counts(all_rows),
        filter_names=filters.FILTERS,
        stop_reasons=stop_reasons(all_rows),
        comparison=result.comparison,
        comparison_labels=COMPARED_METRICS,
        closeness=result.closeness,
        closeness_features=FEATURE_LABELS,
        prompt_json=json.dumps(example_prompt(result), indent=2, ensure_ascii=False),
        generation_json=json.dumps(result.provenance["generation"], indent=2, sort_keys=True),
        model_license=model_license(result.provenance["generator"]),
        data_license=DATA_LICENSE,
        parquet={"pyarrow": pa.__version__, "row_group_size": ROW_GROUP_SIZE, "compression": PARQUET_COMPRESSION},
        data_files=data_files,
        configs=list(rows),
    )


def write_dataset_folder(result: RunResult, folder: Path, repo_id: str, tag: str | None) -> list[DataFile]:
    rows = published_rows(result)
    data_files = write_parquet_files(rows, features(), folder)
    card = render_card(result, rows, data_files, repo_id, tag)
    atomic_write(folder / "README.md", str(card).encode("utf-8"))
    return data_files


def publish(result: RunResult, repo_id: str, *, tag: str | None = None, api=None) -> PublishResult:
    """Push the run to the dataset repo `repo_id` in one commit as release `tag` (the same rows make no new commit,
    and an existing tag is never moved: see `dialoghub.hub.client`)."""
    sizes = ", ".join(f"{split} {len(result.kept(split))}" for split in result.config.splits)
    generator = result.provenance["generator"]
    adapter = f" + {generator['adapter_id']}@{generator['adapter_sha']}" if generator["adapter_id"] else ""
    return publish_dataset(
        lambda folder: write_dataset_folder(result, folder, repo_id, tag),
        repo_id,
        tag=tag,
        commit_message=f"Synthetic dialogues ({sizes})",
        commit_description=f"Generated by {generator['model_id']}@{generator['model_sha']}{adapter}",
        api=api,
    )
