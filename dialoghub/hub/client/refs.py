"""References to Hub repos, as every entry point and config takes them: `ID`, `ID@REV`, a local folder (or "none",
`dialoghub.core.recipes.optional_reference`).

`resolve_repo` turns a reference into the commit sha it points at now, so a stage loads exactly that commit and
records it: a branch that moves during a run cannot mix two versions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class RepoReferenceError(ValueError):
    """A reference that does not name a repo (or a revision of it) on the Hub."""


class UnknownRepoError(RepoReferenceError):
    """No repo of that id on the Hub, and no local folder of that name."""


class UnknownRevisionError(RepoReferenceError):
    """The repo exists, but not the revision."""


def split_revision(reference: str) -> tuple[str, str | None]:
    """`"owner/name@rev"` -> `("owner/name", "rev")`; no `@` -> revision None. Local paths are returned whole."""
    if os.path.isdir(reference) or "@" not in reference:
        return reference, None
    repo_id, revision = reference.rsplit("@", 1)
    if not repo_id or not revision:
        raise RepoReferenceError(f"{reference!r}: expected ID or ID@REVISION")
    return repo_id, revision


def repo_id_of(reference: str) -> str:
    """The repo id (or folder) of `ID`, `ID@REV` or a folder."""
    return split_revision(reference)[0]


@dataclass(frozen=True)
class ResolvedRepo:
    """A repo: what was asked for, and the exact commit (None for a local folder) that was loaded."""

    repo_id: str
    revision: str | None
    """As requested: a branch, a tag, a sha, or None for the default branch."""
    sha: str | None

    @property
    def is_local(self) -> bool:
        return self.sha is None

    @property
    def load_revision(self) -> str | None:
        return self.sha

    def __str__(self) -> str:
        return self.repo_id if self.is_local else f"{self.repo_id}@{self.sha}"


def resolve_repo(reference: str, revision: str | None = None, repo_type: str = "model", api=None) -> ResolvedRepo:
    """The commit sha that `reference` (`ID`, `ID@REV` or a local folder) and `revision` point at on the Hub now.

    Raises `UnknownRepoError` or `UnknownRevisionError` (both `ValueError`s) with a message naming what is missing.
    """
    repo_id, inline_revision = split_revision(reference)
    if inline_revision and revision and inline_revision != revision:
        raise RepoReferenceError(
            f"{reference!r} names revision {inline_revision!r} but revision={revision!r} was also given"
        )
    revision = inline_revision or revision
    if os.path.isdir(repo_id):
        if revision:
            raise RepoReferenceError(f"{repo_id} is a local folder: it has no revision {revision!r}")
        return ResolvedRepo(repo_id, None, None)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError, RevisionNotFoundError

    api = api or HfApi()
    try:
        sha = api.repo_info(repo_id, revision=revision, repo_type=repo_type).sha
    except RevisionNotFoundError as error:
        raise UnknownRevisionError(f"{repo_type} {repo_id} has no revision {revision!r}") from error
    except (RepositoryNotFoundError, HFValidationError) as error:
        raise UnknownRepoError(
            f"no {repo_type} repo {repo_id!r} on {api.endpoint}, and no local folder of that name"
        ) from error
    return ResolvedRepo(repo_id, revision, sha)


def repo_record(reference: str | None, repo_type: str = "model") -> dict[str, str | None] | None:
    """`{"id", "revision", "sha"}` of a Hub repo (`ID` or `ID@REV`) or a local folder (sha None), as records name
    it."""
    if reference is None:
        return None
    resolved = resolve_repo(reference, repo_type=repo_type)
    return {"id": resolved.repo_id, "revision": resolved.revision, "sha": resolved.sha}
