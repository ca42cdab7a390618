"""Run the quick-start code of a published card, as a reader would paste it: its ```python blocks, in order, in a
fresh interpreter on the test Hub (the environment conftest.py set up)."""

from __future__ import annotations

import subprocess
import sys

from markdown_it import MarkdownIt

from dialoghub.core import processes
from dialoghub.core.paths import REPO_ROOT

QUICK_START_TIMEOUT_S = 600


def python_blocks(card_text: str) -> list[str]:
    return [
        token.content for token in MarkdownIt().parse(card_text) if token.type == "fence" and token.info == "python"
    ]


def run_quick_start(card_text: str, substitutions: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Execute the card's python blocks after replacing each key of `substitutions` (which must occur in them) by its
    value; the completed process, stdout and stderr as text."""
    code = "\n".join(python_blocks(card_text))
    assert code, "the card has no python block"
    for old, new in (substitutions or {}).items():
        assert old in code, f"{old!r} is not in the card's code"
        code = code.replace(old, new)
    return processes.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=QUICK_START_TIMEOUT_S
    )
