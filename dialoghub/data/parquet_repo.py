"""A dataset repo of deterministic parquet files plus a card whose YAML `configs:` make `load_dataset(repo_id)` work.

Shared by `org/tweetsumm-clean` and `org/synthetic-dialogues`: the same rows always give the same bytes, so a
re-publish of unchanged data makes no commit, and a release tag is never moved.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dialoghub.core.files import atomic_write
from dialoghub.hub.client import Publication, publish_folder

# Fixed, so the files never depend on pyarrow's defaults; one row group holds a whole TweetSumm split.
ROW_GROUP_SIZE = 1000
PARQUET_COMPRESSION = "snappy"


@dataclass(frozen=True)
class DataFile:
    path: str
    config: str
    split: str
    num_examples: int
    num_bytes: int
    """In-memory Arrow size, as `datasets` records it in `dataset_info`."""
    size: int
    sha256: str


@dataclass
class PublishResult(Publication):
    data_files: list[DataFile] = field(default_factory=list)


def parquet_path(config: str, split: str) -> str:
    return f"data/{config}/{split}-00000-of-00001.parquet"


def parquet_bytes(rows: list[dict], features) -> tuple[bytes, int]:
    """The parquet file of `rows` (same rows, same bytes) and the table's Arrow size."""
    table = pa.Table.from_pylist(rows, schema=features.arrow_schema)
    buffer = io.BytesIO()
    pq.write_table(
        table,
        buffer,
        row_group_size=ROW_GROUP_SIZE,
        compression=PARQUET_COMPRESSION,
        use_dictionary=True,
        write_statistics=True,
    )
    return buffer.getvalue(), table.nbytes


def write_parquet_files(rows: dict[str, dict[str, list[dict]]], features, folder: Path) -> list[DataFile]:
    """`rows[config][split]` -> `folder/data/{config}/{split}-00000-of-00001.parquet`."""
    data_files = []
    for config, splits in rows.items():
        for split, split_rows in splits.items():
            content, num_bytes = parquet_bytes(split_rows, features)
            path = parquet_path(config, split)
            atomic_write(folder / path, content)
            digest = hashlib.sha256(content).hexdigest()
            data_files.append(DataFile(path, config, split, len(split_rows), num_bytes, len(content), digest))
    return data_files


def size_category(num_rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if num_rows < limit:
            return name
    return "n>1M"


def add_dataset_info(card_data, data_files: list[DataFile], features, configs) -> None:
    """Write `dataset_info` (features, split sizes) and `configs` (data files; `default` first) into the card."""
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs

    infos = {}
    for config in configs:
        files = [file for file in data_files if file.config == config]
        splits = SplitDict({file.split: SplitInfo(file.split, file.num_bytes, file.num_examples) for file in files})
        infos[config] = DatasetInfo(
            features=features,
            config_name=config,
            splits=splits,
            download_size=sum(file.size for file in files),
            dataset_size=sum(file.num_bytes for file in files),
        )
    DatasetInfosDict(infos).to_dataset_card_data(card_data)
    metadata_configs = {
        config: {
            "data_files": [{"split": file.split, "path": file.path} for file in data_files if file.config == config],
            **({"default": True} if config == "default" else {}),
        }
        for config in configs
    }
    MetadataConfigs(metadata_configs).to_dataset_card_data(card_data)


def publish_dataset(
    write_folder: Callable[[Path], list[DataFile]],
    repo_id: str,
    *,
    tag: str | None,
    commit_message: str,
    commit_description: str | None = None,
    api=None,
) -> PublishResult:
    """Write the repo's files with `write_folder(folder)` and publish them as release `tag` (`publish_folder`).

    A tag is never moved. If it exists at a commit with other data files, nothing is pushed and `TagConflictError`
    says so. If only the card differs (its provenance names the builder's commit, which changes when the builder is
    committed), the card is updated on the branch and the tag stays on the earlier commit, which holds the same data.
    """
    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory(prefix=f"{repo_id.split('/')[-1]}-") as temporary:
        folder = Path(temporary)
        data_files = write_folder(folder)
        publication = publish_folder(
            api or HfApi(),
            folder,
            repo_id,
            repo_type="dataset",
            commit_message=commit_message,
            commit_description=commit_description,
            # Shards this build no longer writes (a dropped split, a renamed file) must not linger in the repo.
            delete_patterns=["data/**"],
            tag=tag,
        )
    return PublishResult(**vars(publication), data_files=data_files)
