"""Embedded Hub figures, each with its baseline from the same run.

- load_dataset of a 100k-row parquet through the Hub vs. from the local file (ratio);
- upload throughput of a 200 MB LFS file vs. copying the same file on this disk (ratio);
- the cost of a no-op re-push: time, and the number of commits it made (must be 0).

Usage: python benchmarks/hub_bench.py [--rows 100000] [--upload-mb 200]
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from dialoghub.hub.client import isolate_hf_environment, start_hub


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--upload-mb", type=int, default=200)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    endpoint = isolate_hf_environment(workdir)
    from urllib.parse import urlparse

    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import load_dataset
    from huggingface_hub import HfApi

    hub = start_hub(workdir / "hub", port=urlparse(endpoint).port)
    api = HfApi(endpoint=endpoint)
    try:
        local = workdir / "local" / "data" / "train-00000-of-00001.parquet"
        local.parent.mkdir(parents=True)
        table = pa.table(
            {
                "id": [f"row-{index}" for index in range(args.rows)],
                "text": [
                    f"Customer: my order {index} is late. Agent: sorry, we will check." for index in range(args.rows)
                ],
                "length": list(range(args.rows)),
            }
        )
        pq.write_table(table, local)
        api.create_repo("bench/rows", repo_type="dataset")
        api.upload_folder(folder_path=local.parent.parent, repo_id="bench/rows", repo_type="dataset")

        local_seconds, local_dataset = timed(lambda: load_dataset("parquet", data_files=str(local), split="train"))
        hub_seconds, hub_dataset = timed(lambda: load_dataset("bench/rows", split="train"))
        assert hub_dataset.num_rows == local_dataset.num_rows == args.rows
        print(
            f"load_dataset {args.rows} rows: hub {hub_seconds:.2f}s, local file {local_seconds:.2f}s, "
            f"ratio hub/local {hub_seconds / local_seconds:.2f}x"
        )

        big = workdir / "big.bin"
        with open(big, "wb") as handle:
            for _ in range(args.upload_mb):
                handle.write(os.urandom(1 << 20))
        copy_seconds, _ = timed(lambda: shutil.copyfile(big, workdir / "big-copy.bin"))
        api.create_repo("bench/big")
        upload_seconds, _ = timed(
            lambda: api.upload_file(path_or_fileobj=str(big), path_in_repo="big.bin", repo_id="bench/big")
        )
        print(
            f"upload {args.upload_mb} MB (LFS): {args.upload_mb / upload_seconds:.1f} MB/s in {upload_seconds:.2f}s; "
            f"local disk copy {args.upload_mb / copy_seconds:.1f} MB/s; ratio upload/copy time "
            f"{upload_seconds / copy_seconds:.1f}x"
        )

        commits_before = len(api.list_repo_commits("bench/rows", repo_type="dataset"))
        noop_seconds, _ = timed(
            lambda: api.upload_folder(folder_path=local.parent.parent, repo_id="bench/rows", repo_type="dataset")
        )
        new_commits = len(api.list_repo_commits("bench/rows", repo_type="dataset")) - commits_before
        print(
            f"no-op re-push: {noop_seconds:.2f}s, {new_commits} new commits "
            f"(ratio to the first load through the hub {noop_seconds / hub_seconds:.2f}x)"
        )
        if new_commits:
            raise SystemExit("FAIL: a no-op re-push created a commit")
    finally:
        hub.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
