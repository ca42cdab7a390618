"""Input checks of the embedded Hub: repo ids, file paths, revisions and README metadata."""

from __future__ import annotations

import json
import re

import yaml
from dulwich.refs import check_ref_format

REPO_TYPES = {"model": "models", "dataset": "datasets", "space": "spaces"}
URL_PREFIX_TO_TYPE = {"models": "model", "datasets": "dataset", "spaces": "space"}

_NAME_PART = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?$")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# Bidirectional controls (which make a path read differently from what it is) and the zero-width code points that
# HFS ignores in file names (so `.g\u200cit` is `.git` to it), which git fsck refuses for the same reason.
_INVISIBLE_CHARACTERS = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
_REF_NAME = re.compile(r"^[A-Za-z0-9._-][A-Za-z0-9._/-]{0,199}$")
MAX_PATH_LENGTH = 1024
MAX_YAML_DEPTH = 64
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Names git fsck treats as `.git`, `.gitmodules` or `.gitattributes` (case-insensitively, with the NTFS trailing
# dots and spaces and 8.3 short names): none may be a folder, and only `.gitattributes` may be a file.
_GIT_DIR_NAMES = re.compile(r"^(\.git|git~1)[. ]*$", re.I)
_GITMODULES_NAMES = re.compile(r"^(\.gitmodules|gitmod~\d|gi7eba~\d)[. ]*$", re.I)
_GITATTRIBUTES_NAMES = re.compile(r"^(\.gitattributes|gitatt~\d|gi7d29~\d)[. ]*$", re.I)
# The Hub's own URL segments: `models/x` would be `models/models/x.git` on disk and `/models/x/...` in URLs.
RESERVED_NAMESPACES = frozenset({"api", "models", "datasets", "spaces"})


class HubError(Exception):
    """An error the server returns as JSON `{"error": ...}` with the Hub's `X-Error-Code` where it has one."""

    def __init__(self, status: int, code: str | None, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def headers(self) -> dict[str, str]:
        """The Hub's error headers. The message echoes client input, so it travels JSON-escaped: ASCII, no CR/LF."""
        if not self.code:
            return {}
        return {"X-Error-Code": self.code, "X-Error-Message": json.dumps(self.message[:200])[1:-1]}


def validate_repo_type(repo_type: str | None) -> str:
    repo_type = repo_type or "model"
    if repo_type not in REPO_TYPES:
        raise HubError(400, None, f"Invalid repo type {repo_type!r}; expected one of {sorted(REPO_TYPES)}")
    return repo_type


def validate_repo_id(namespace: str, name: str) -> str:
    for part in (namespace, name):
        if not _NAME_PART.match(part or "") or ".." in part or part.endswith(".git"):
            raise HubError(
                400, None, f"Invalid repo id {namespace}/{name}: use letters, digits, '-', '_' and '.' (no '..')"
            )
    if namespace.lower() in RESERVED_NAMESPACES:
        raise HubError(400, None, f"Invalid repo id {namespace}/{name}: {namespace!r} is a reserved name")
    return f"{namespace}/{name}"


def validate_path(path: str) -> str:
    """A file path inside a repo: relative, no '..', no control characters, nothing inside `.git`."""
    if not path or len(path) > MAX_PATH_LENGTH:
        raise HubError(400, None, "Invalid path: empty or too long")
    if _CONTROL_CHARACTERS.search(path) or "\\" in path:
        raise HubError(400, None, f"Invalid path {path!r}: control characters or backslashes")
    if _INVISIBLE_CHARACTERS.search(path):
        raise HubError(400, None, f"Invalid path {path!r}: bidirectional or zero-width characters")
    parts = path.split("/")
    if path.startswith("/") or any(part.strip() in ("", ".", "..") for part in parts):
        raise HubError(
            400, None, f"Invalid path {path!r}: must be relative, without '.', '..', blank or empty segments"
        )
    if any(_GIT_DIR_NAMES.match(part) or _GITMODULES_NAMES.match(part) for part in parts):
        raise HubError(400, None, f"Invalid path {path!r}: .git internals are not repository files")
    if any(_GITATTRIBUTES_NAMES.match(part) for part in parts[:-1]):
        raise HubError(400, None, f"Invalid path {path!r}: .gitattributes must be a file")
    return path


def validate_ref_name(name: str) -> str:
    """A branch or tag name: what `git check-ref-format` accepts, less what git and the Hub reserve."""
    reserved = name == "HEAD" or name.startswith(("-", "refs/"))
    if reserved or not _REF_NAME.match(name) or not check_ref_format(f"refs/heads/{name}".encode()):
        raise HubError(400, None, f"Invalid branch or tag name {name!r}")
    return name


# git fsck --strict flags a NUL in a commit or tag message; a title is one line, so it holds no control character at
# all, and the free text keeps only tabs and line breaks.
_TITLE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MESSAGE_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def validate_commit_message(summary: str, description: str = "") -> None:
    """A commit (or tag) message git stores cleanly: control characters are a 400, as git fsck would flag them."""
    if _TITLE_FORBIDDEN.search(summary):
        raise HubError(400, None, f"Invalid commit summary {summary[:80]!r}: control characters are not allowed")
    if _MESSAGE_FORBIDDEN.search(description):
        raise HubError(400, None, "Invalid commit description: control characters other than tab and newline")


def validate_commit_target(revision: str) -> str:
    """Where a commit may go: a branch (`x` or `refs/heads/x`) or a pull request (`refs/pr/N`)."""
    if re.fullmatch(r"refs/pr/[1-9][0-9]*", revision):
        return revision
    return validate_ref_name(revision.removeprefix("refs/heads/"))


def split_front_matter(readme: str) -> str | None:
    """The YAML block between the leading `---` lines of a README, or None when there is none."""
    match = re.match(r"^---[ \t]*\r?\n(.*?)(?:\r?\n)?^---[ \t]*$", readme, re.S | re.M)
    return match.group(1) if match else None


_LIST_OF_STRINGS_FIELDS = ("tags", "datasets", "language", "task_categories", "task_ids", "size_categories", "metrics")


def _is_list_of_strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def metadata_errors(metadata, repo_type: str) -> list[str]:
    """Type checks of the card fields the Hub and its clients interpret; unknown fields are allowed, as on the Hub."""
    if metadata is None:
        return []
    if not isinstance(metadata, dict):
        return [f"The metadata must be a YAML mapping, not {type(metadata).__name__}"]
    errors = []
    for field in _LIST_OF_STRINGS_FIELDS:
        value = metadata.get(field)
        if value is not None and not (isinstance(value, str) or _is_list_of_strings(value)):
            errors.append(f'"{field}" must be a string or a list of strings')
    for field in ("license", "base_model", "pipeline_tag", "library_name", "pretty_name"):
        value = metadata.get(field)
        if value is not None and not (isinstance(value, str) or _is_list_of_strings(value)):
            errors.append(f'"{field}" must be a string or a list of strings')
    model_index = metadata.get("model-index")
    if model_index is not None:
        if not isinstance(model_index, list):
            errors.append('"model-index" must be a list')
        else:
            for position, model in enumerate(model_index):
                if not isinstance(model, dict) or "name" not in model or not isinstance(model.get("results"), list):
                    errors.append(f'"model-index[{position}]" needs a "name" and a list of "results"')
                    continue
                for result_position, result in enumerate(model["results"]):
                    where = f"model-index[{position}].results[{result_position}]"
                    if not isinstance(result, dict) or not isinstance(result.get("task"), dict):
                        errors.append(f'"{where}" needs a "task" mapping')
                    elif not isinstance(result.get("metrics"), list) or not all(
                        isinstance(metric, dict) and "type" in metric and "value" in metric
                        for metric in result["metrics"]
                    ):
                        errors.append(f'"{where}.metrics" must be a list of mappings with "type" and "value"')
    configs = metadata.get("configs")
    if configs is not None:
        if repo_type != "dataset":
            errors.append('"configs" is only meaningful in dataset cards')
        elif not isinstance(configs, list) or not all(
            isinstance(config, dict) and isinstance(config.get("config_name"), str) for config in configs
        ):
            errors.append('"configs" must be a list of mappings, each with a "config_name"')
        else:
            names = [config["config_name"] for config in configs]
            if len(names) != len(set(names)):
                errors.append('"configs" has duplicate config_name values')
            if not all("data_files" in config or "data_dir" in config for config in configs):
                errors.append('each entry of "configs" needs "data_files" or "data_dir"')
    widget = metadata.get("widget")
    if widget is not None and not (isinstance(widget, list) and all(isinstance(item, dict) for item in widget)):
        errors.append('"widget" must be a list of mappings')
    return errors


def load_card_yaml(text: str):
    """The card's YAML, refusing aliases (a few bytes of nested aliases expand to megabytes on every read) and
    nesting deeper than any card needs; libyaml parses it, when PyYAML has it, in linear time."""
    depth = 0
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases (*name) are not allowed in card metadata")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise yaml.YAMLError(f"The YAML is nested deeper than {MAX_YAML_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return yaml.load(text, Loader=_YAML_LOADER)


def validate_readme_metadata(content: str, repo_type: str) -> list[str]:
    """Parse the README's YAML front matter (or a bare YAML document) and return the problems found."""
    front_matter = split_front_matter(content)
    text = front_matter if front_matter is not None else content
    if content.startswith("---") and front_matter is None:
        return ["The YAML front matter opened with '---' is never closed"]
    try:
        metadata = load_card_yaml(text) if text.strip() else None
    except yaml.YAMLError as error:
        return [f"Invalid YAML: {error}"]
    if front_matter is None and not isinstance(metadata, dict):
        return []  # A README without metadata is fine.
    return metadata_errors(metadata, repo_type)


def card_data(readme: str) -> dict | None:
    front_matter = split_front_matter(readme)
    if front_matter is None:
        return None
    try:
        metadata = load_card_yaml(front_matter)
    except yaml.YAMLError:
        return None
    return metadata if isinstance(metadata, dict) else None
