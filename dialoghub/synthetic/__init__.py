"""`org/synthetic-dialogues`: Customer/Agent dialogues generated from summaries, filtered, resumable, published.

- `filters`: parsing a generated text into turns, and the quality filters (each with a reason code);
- `shards`: the resumable store (one atomically written shard per generated batch);
- `run`: candidates, few-shot prompts, generation and filtering (`generate_dialogues`);
- `comparison`: the generator against the base model with worked examples, on the same summaries;
- `closeness`: how close the published dialogues are to the real dialogs of their source conversations;
- `publish`: parquet, card and tagged push.

The pipeline runs `scripts/generate_dialogues.py` with `datasets_repo/synthetic-dialogues/recipe.yaml` (generate,
compare with the baseline, publish). `generate_and_publish` is the same generate-and-publish in one Python call, for
a notebook or a test; it makes no baseline comparison.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dialoghub.core.paths import project_org
from dialoghub.synthetic.publish import publish
from dialoghub.synthetic.run import (
    DEFAULT_GENERATOR_ADAPTER,
    DEFAULT_SUMMARIZER_ADAPTER,
    SyntheticConfig,
    default_few_shot,
    generate_dialogues,
    resolve_auto,
)

logger = logging.getLogger(__name__)


def default_repo_id() -> str:
    return f"{project_org()}/synthetic-dialogues"


def generate_and_publish(
    repo_id: str | None = None,
    *,
    splits: dict[str, int],
    tag: str | None = None,
    adapter: str | None = "auto",
    summarizer_adapter: str | None = "auto",
    few_shot: int | None = None,
    work_dir: str | Path | None = None,
    progress: bool = True,
    **config,
) -> str:
    """Generate (resuming any earlier run of the same settings), filter and push; returns the commit sha.

    Defaults: SmolLM2 from the Hub, plus `org/dialogue-generator-lora` if it exists ("auto"); 1-shot prompts
    without an adapter, zero-shot with one; round-trip filtering with `org/summarizer-lora` on its own base if that
    exists. Other `SyntheticConfig` fields go in `config`.
    """
    adapter = resolve_auto(adapter, DEFAULT_GENERATOR_ADAPTER)
    run_config = SyntheticConfig(
        splits=dict(splits),
        adapter=adapter,
        few_shot=default_few_shot(adapter) if few_shot is None else few_shot,
        summarizer_adapter=resolve_auto(summarizer_adapter, DEFAULT_SUMMARIZER_ADAPTER),
        **config,
    )
    result = generate_dialogues(run_config, work_dir=work_dir, progress=progress)
    published = publish(result, repo_id or default_repo_id(), tag=tag)
    logger.info("Published %s at %s", published.repo_id, published.commit)
    return published.commit


__all__ = ["SyntheticConfig", "default_repo_id", "generate_and_publish", "generate_dialogues"]
