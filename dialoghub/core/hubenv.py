"""Point the Hugging Face libraries at the Hub before they are imported.

`huggingface_hub`, `datasets` and `transformers` read `HF_ENDPOINT` and `HF_HUB_DISABLE_XET` once, at import time,
so every entry point imports this module first (ruff's isort keeps it in a section of its own, above the rest).

- If `HF_ENDPOINT` is already set (huggingface.co, or a Hub you run yourself), it is respected.
- Otherwise the embedded default Hub is used: `http://127.0.0.1:$DIALOGHUB_HUB_PORT` (8765), with its download
  cache under the dialoghub base dir so it never mixes with a cache filled from huggingface.co.
"""

import os

from dialoghub.core.paths import base_dir

DEFAULT_EMBEDDED_PORT = 8765

# On a Hugging Face Space (SPACE_ID is set there) the default is huggingface.co itself.
USING_EMBEDDED_DEFAULT = not os.environ.get("HF_ENDPOINT") and not os.environ.get("SPACE_ID")

if USING_EMBEDDED_DEFAULT:
    os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{os.environ.get('DIALOGHUB_HUB_PORT', DEFAULT_EMBEDDED_PORT)}"
    os.environ.setdefault("HF_HOME", str(base_dir() / "hf_home"))
# The embedded Hub speaks basic LFS, not Xet; huggingface.co accepts basic LFS too.
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def endpoint() -> str:
    """The Hub the Hugging Face libraries talk to, read when asked: a test or a caller may point `HF_ENDPOINT`
    elsewhere after this module was imported, as long as it does so before importing those libraries."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
