"""What a leaderboard record names: the exact commits of every repo it read, the code and library versions."""

from __future__ import annotations

from typing import Any

from dialoghub.core import files

VERSIONED_PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "datasets",
    "huggingface_hub",
    "sentence-transformers",
    "rouge_score",
    "sacrebleu",
    "nltk",
    "numpy",
    "alt-profanity-check",
    "scikit-learn",
)
# The code that makes the scores
SCORING_CODE = ("dialoghub", "evaluation")


def package_versions() -> dict[str, str | None]:
    return files.package_versions(VERSIONED_PACKAGES)


def code_version() -> dict[str, Any]:
    """The last commit of the code that makes the scores, and whether it has uncommitted changes."""
    return files.code_version(SCORING_CODE)


def pinned(repo: dict[str, str | None] | None) -> str | None:
    """`ID@SHA` of a recorded repo (`ID` for one that has no sha: a folder, a named rule set), or none."""
    if repo is None or repo.get("id") is None:
        return None
    return f"{repo['id']}@{repo['sha']}" if repo.get("sha") else repo["id"]


def model_label(repo_id: str, revision: str | None, sha: str | None) -> str:
    short = sha[:7] if sha else "local"
    return f"{repo_id}@{revision} ({short})" if revision and revision != sha else f"{repo_id} ({short})"
