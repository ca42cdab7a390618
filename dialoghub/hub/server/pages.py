"""The Hub's web pages, rendered on the server: home, repo pages (card, files, commits, discussions), the dataset
viewer and a benchmark's leaderboard, at any revision (`?revision=` or `/tree/<rev>`).

Card text is untrusted: markdown-it renders it and nh3 (the ammonia sanitizer) keeps only inert HTML, and every page
carries a Content-Security-Policy that allows no inline script, so a `<script>` or an `onerror=` in a card never
runs. A private repo's pages show only to a visitor holding the token (an `Authorization` header, or the cookie the
login form sets); anyone else gets the 404 a missing repo gets.

The routes are registered after the API's, and every path here is one the API does not serve (the API lives under
`/api/`, and its file routes end in `resolve/...` or `.git/...`).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urljoin

import nh3
import pyarrow as pa
import pyarrow.parquet as pq
from dulwich.repo import Repo
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt

from dialoghub.hub.server.dependencies import LOCAL_USER, RepoRef, get_settings, has_valid_token
from dialoghub.hub.server.discussions import Discussions
from dialoghub.hub.server.evaluations import eval_results_json, leaderboard_json, read_benchmark
from dialoghub.hub.server.storage import HEAD_BRANCH, HubStorage
from dialoghub.hub.server.validation import (
    REPO_TYPES,
    HubError,
    card_data,
    split_front_matter,
    validate_path,
    validate_repo_id,
)

HERE = Path(__file__).parent
TOKEN_COOKIE = "dialoghub_token"
VIEWER_PAGE_ROWS = 20
COMMITS_SHOWN = 100
CELL_CHARACTERS = 400
TEXT_FILE_BYTES = 200_000
PREFIX = {"model": "", "dataset": "/datasets", "space": "/spaces"}
KIND_TITLES = {"model": "Models", "dataset": "Datasets", "space": "Spaces"}

templates = Jinja2Templates(directory=HERE / "templates")
_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table").enable("strikethrough")


class HtmlErrorRoute(APIRoute):
    """A page route: a HubError becomes an HTML page with the same status, not the API's JSON."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def html_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except HubError as error:
                status = 404 if error.code == "RepoNotFound" else error.status
                context = {"status": status, "message": error.message, "signed_in": can_read_private(request)}
                return page(request, "error.html", context, status_code=status)

        return html_errors


router = APIRouter(route_class=HtmlErrorRoute)


# ----- access ------------------------------------------------------------------------------------------------------
def can_read_private(request: Request) -> bool:
    """The API's rule (an `Authorization` header), or the token in the login cookie."""
    settings = get_settings(request)
    if settings.token is None or has_valid_token(request):
        return True
    cookie = request.cookies.get(TOKEN_COOKIE, "")
    return hmac.compare_digest(cookie.encode(), settings.token.encode())


@contextmanager
def readable(request: Request, ref: RepoRef) -> Iterator[Repo]:
    """The repo if this visitor may see it; a private one looks exactly like a missing one (404)."""
    storage = get_settings(request).storage
    missing = HubError(404, "RepoNotFound", f"Repository {REPO_TYPES[ref.type]}/{ref.id} not found")
    try:
        repo = storage.open(ref.type, ref.id)
    except HubError:
        raise missing from None
    try:
        if storage.is_private(repo) and not can_read_private(request):
            raise missing
        yield repo
    finally:
        repo.close()


def page_ref(repo_type: str, namespace: str, name: str) -> RepoRef:
    try:
        return RepoRef(repo_type, validate_repo_id(namespace, name))
    except HubError:
        raise HubError(404, "RepoNotFound", f"Repository {namespace}/{name} not found") from None


# ----- rendering helpers -------------------------------------------------------------------------------------------
def render_markdown(text: str, files_url: str | None = None) -> str:
    """Untrusted markdown (with raw HTML) to HTML that can do nothing but display.

    A relative link or image in a card (`![loss](loss_curve.png)`) means a file of the repo, as on the Hub: it is
    resolved against `files_url` (the repo's `resolve/<revision>/`); links within the page (`#...`) and site paths
    (`/...`) are kept."""

    def into_repo(url: str) -> str:
        return url if url.startswith(("#", "/")) else urljoin(files_url, url)

    return nh3.clean(
        _markdown.render(text), link_rel="noopener noreferrer nofollow", url_relative=into_repo if files_url else None
    )


def card_body(readme: str) -> str:
    """The README without its YAML front matter."""
    if split_front_matter(readme) is None:
        return readme
    lines = readme.splitlines(keepends=True)
    closing = next(index for index, line in enumerate(lines[1:], start=1) if line.rstrip() == "---")
    return "".join(lines[closing + 1 :])


def content_security_policy(inference_url: str | None) -> str:
    connect = f"'self' {inference_url}" if inference_url else "'self'"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


def inference_url(request: Request) -> str | None:
    configured = request.app.state.inference_url
    return configured.rstrip("/") if configured else None


def page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Content-Security-Policy"] = content_security_policy(inference_url(request))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def iso_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def repo_url(ref: RepoRef) -> str:
    return f"{PREFIX[ref.type]}/{ref.id}"


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass
class RepoView:
    """What every tab of a repo page shows in its header."""

    ref: RepoRef
    revision: str
    sha: str
    private: bool
    branches: list[str]
    tags: list[str]
    files: dict[str, bytes]
    metadata: dict | None
    readme: str | None

    @property
    def url(self) -> str:
        return repo_url(self.ref)

    @property
    def at_revision(self) -> str:
        return "" if self.revision == HEAD_BRANCH else "?" + urlencode({"revision": self.revision})

    @property
    def quoted_revision(self) -> str:
        return quote(self.revision, safe="")

    @property
    def files_url(self) -> str:
        """Where the files at this revision are served (a card's relative links resolve here)."""
        return f"{self.url}/resolve/{self.quoted_revision}/"


def repo_view(storage: HubStorage, ref: RepoRef, repo: Repo, revision: str) -> RepoView:
    sha = storage.resolve(repo, revision)
    files = storage.all_files(repo, sha)
    readme = None
    if "README.md" in files:
        readme = storage.read_blob(repo, files["README.md"].decode()).decode("utf-8", "replace")
    refs = storage.refs(repo)
    return RepoView(
        ref=ref,
        revision=revision,
        sha=sha,
        private=storage.is_private(repo),
        branches=[branch["name"] for branch in refs["branches"]],
        tags=[tag["name"] for tag in refs["tags"]],
        files=files,
        metadata=card_data(readme) if readme else None,
        readme=readme,
    )


def sidebar(view: RepoView) -> list[tuple[str, list[dict[str, str | None]]]]:
    """(label, [{text, href}]) rows of the metadata sidebar, from the card's YAML."""
    metadata = view.metadata or {}
    rows = []

    def model_link(value: str) -> dict[str, str | None]:
        repo_id, _, revision = value.partition("@")
        href = f"/{repo_id}" + (f"?{urlencode({'revision': revision})}" if revision else "")
        return {"text": value, "href": href if "/" in repo_id else None}

    revisions = dataset_revisions(metadata)

    def dataset_link(value: str) -> dict[str, str | None]:
        repo_id, _, revision = value.partition("@")
        revision = revision or revisions.get(repo_id, "")
        href = f"/datasets/{repo_id}" + (f"?{urlencode({'revision': revision})}" if revision else "")
        text = repo_id + (f" @ {revision[:12]}" if revision else "")
        return {"text": text, "href": href if "/" in repo_id else None}

    base_models = [model_link(str(item)) for item in as_list(metadata.get("base_model"))]
    if base_models:
        rows.append(("Base model", base_models))
    datasets = [dataset_link(str(item)) for item in as_list(metadata.get("datasets"))]
    if datasets:
        rows.append(("Datasets", datasets))
    for key, label in (("license", "License"), ("library_name", "Library"), ("pipeline_tag", "Task")):
        values = [{"text": str(item), "href": None} for item in as_list(metadata.get(key))]
        if values:
            rows.append((label, values))
    tags = [str(tag) for tag in as_list(metadata.get("tags"))]
    tags = [{"text": tag, "href": "/?" + urlencode({"search": tag})} for tag in tags]
    if tags:
        rows.append(("Tags", tags))
    return rows


def dataset_revisions(metadata: dict) -> dict[str, str]:
    """The dataset revisions the card's model-index records (`dataset.revision`), by dataset id."""
    revisions = {}
    for model in as_list(metadata.get("model-index")):
        for result in as_list(model.get("results") if isinstance(model, dict) else None):
            dataset = result.get("dataset") if isinstance(result, dict) else None
            if isinstance(dataset, dict) and dataset.get("type") and dataset.get("revision"):
                revisions.setdefault(str(dataset["type"]), str(dataset["revision"]))
    return revisions


def model_index_rows(metadata: dict | None) -> list[dict[str, Any]]:
    rows = []
    for model in as_list((metadata or {}).get("model-index")):
        for result in as_list(model.get("results") if isinstance(model, dict) else None):
            if not isinstance(result, dict):
                continue
            task = result.get("task") if isinstance(result.get("task"), dict) else {}
            dataset = result.get("dataset") if isinstance(result.get("dataset"), dict) else {}
            for metric in as_list(result.get("metrics")):
                if isinstance(metric, dict):
                    rows.append(
                        {
                            "task": task.get("name") or task.get("type"),
                            "dataset": dataset.get("name") or dataset.get("type"),
                            "split": dataset.get("split"),
                            "revision": dataset.get("revision"),
                            "metric": metric.get("name") or metric.get("type"),
                            "value": metric.get("value"),
                        }
                    )
    return rows


def widget_examples(metadata: dict | None) -> list[dict[str, Any]]:
    """The card's `widget:` examples as chat messages: `messages`, or a `text` as one user message."""
    examples = []
    for index, item in enumerate(as_list((metadata or {}).get("widget"))):
        if not isinstance(item, dict):
            continue
        messages = item.get("messages")
        if not (isinstance(messages, list) and all(isinstance(message, dict) for message in messages)):
            messages = [{"role": "user", "content": str(item["text"])}] if "text" in item else None
        if messages:
            clean = [{"role": str(m.get("role", "user")), "content": str(m.get("content", ""))} for m in messages]
            examples.append({"title": str(item.get("example_title") or f"Example {index + 1}"), "messages": clean})
    return examples


def widget_parameters(metadata: dict | None) -> dict[str, Any]:
    inference = (metadata or {}).get("inference")
    parameters = inference.get("parameters") if isinstance(inference, dict) else None
    if not isinstance(parameters, dict):
        return {}
    allowed = {"max_new_tokens": int, "temperature": float, "top_p": float, "do_sample": bool}
    return {key: kind(value) for key, kind in allowed.items() if isinstance(value := parameters.get(key), int | float)}


# ----- the dataset viewer ------------------------------------------------------------------------------------------
SPLIT_NAMES = ("train", "validation", "valid", "dev", "test")


def dataset_splits(view: RepoView) -> dict[str, dict[str, list[str]]]:
    """config -> split -> parquet files, from the card's `configs:` or, without it, from file names."""
    parquet = sorted(path for path in view.files if path.endswith(".parquet"))
    configs: dict[str, dict[str, list[str]]] = {}
    for config in as_list((view.metadata or {}).get("configs")):
        if not isinstance(config, dict) or not isinstance(config.get("config_name"), str):
            continue
        splits: dict[str, list[str]] = {}
        data_files = config.get("data_files")
        if data_files is None and isinstance(config.get("data_dir"), str):
            data_files = f"{config['data_dir'].strip('/')}/*"
        for item in as_list(data_files):
            split, patterns = ("train", as_list(item)) if isinstance(item, str) else (None, None)
            if isinstance(item, dict):
                split, patterns = str(item.get("split", "train")), as_list(item.get("path"))
            if split is None:
                continue
            matched = [path for path in parquet if any(fnmatchcase(path, str(pattern)) for pattern in patterns)]
            splits.setdefault(split, []).extend(path for path in matched if path not in splits.get(split, []))
        configs[config["config_name"]] = {split: files for split, files in splits.items() if files}
    if not configs and parquet:
        default: dict[str, list[str]] = {}
        for path in parquet:
            name = path.rsplit("/", 1)[-1].lower()
            split = next((split for split in SPLIT_NAMES if name.startswith(split)), "train")
            default.setdefault(split, []).append(path)
        configs["default"] = default
    return {name: splits for name, splits in configs.items() if splits}


def open_parquet(storage: HubStorage, repo: Repo, view: RepoView, path: str) -> pq.ParquetFile:
    entry = storage.entry(repo, view.sha, path)
    if entry is None or entry.type != "file":
        raise HubError(404, "EntryNotFound", f"{path} does not exist at {view.revision}")
    if entry.lfs_oid:
        return pq.ParquetFile(storage.lfs.path(entry.lfs_oid))
    return pq.ParquetFile(pa.BufferReader(storage.read_blob(repo, entry.oid)))


def read_rows(files: list[pq.ParquetFile], offset: int, length: int) -> tuple[list[str], list[list[str]], int]:
    """Columns, the rows [offset, offset + length) across the files in order (reading only the row groups those
    rows lie in), and the total row count."""
    total = sum(file.metadata.num_rows for file in files)
    columns = files[0].schema_arrow.names if files else []
    rows: list[list[str]] = []
    start = 0
    for file in files:
        for group in range(file.num_row_groups):
            count = file.metadata.row_group(group).num_rows
            end = start + count
            if end > offset and start < offset + length and len(rows) < length:
                table = file.read_row_group(group)
                first = max(offset - start, 0)
                for record in table.slice(first, length - len(rows)).to_pylist():
                    rows.append([cell_text(record.get(column)) for column in columns])
            start = end
    return columns, rows, total


def cell_text(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= CELL_CHARACTERS else text[:CELL_CHARACTERS] + "…"


# ----- routes --------------------------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def home(request: Request, search: str = ""):
    storage = get_settings(request).storage
    show_private = can_read_private(request)
    terms = [term for term in search.lower().split() if term]
    kinds = []
    for repo_type in REPO_TYPES:
        items = []
        for repo_id in storage.list_repos(repo_type):
            ref = RepoRef(repo_type, repo_id)
            repo = storage.open(repo_type, repo_id)
            try:
                private = storage.is_private(repo)
                if private and not show_private:
                    continue
                view = repo_view(storage, ref, repo, HEAD_BRANCH)
            except HubError:
                continue
            finally:
                repo.close()
            tags = [str(tag) for tag in as_list((view.metadata or {}).get("tags"))]
            haystack = " ".join([repo_id, *tags]).lower()
            if all(term in haystack for term in terms):
                modified = storage_time(storage, ref, view.sha)
                items.append({"id": repo_id, "url": view.url, "tags": tags[:6], "private": private, "date": modified})
        kinds.append({"type": repo_type, "title": KIND_TITLES[repo_type], "items": items})
    return page(request, "home.html", {"kinds": kinds, "search": search, "signed_in": show_private})


def storage_time(storage: HubStorage, ref: RepoRef, sha: str) -> str:
    repo = storage.open(ref.type, ref.id)
    try:
        return iso_date(storage.commit_info(repo, sha).commit_time)
    finally:
        repo.close()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/"):
    return page(request, "login.html", {"next": safe_next(next), "failed": False, "signed_in": False})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"):
    settings = get_settings(request)
    if settings.token is None or not hmac.compare_digest(token.encode(), settings.token.encode()):
        context = {"next": safe_next(next), "failed": True, "signed_in": False}
        return page(request, "login.html", context, status_code=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
    return response


@router.get("/logout")
def logout():
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(TOKEN_COOKIE)
    return response


def safe_next(target: str) -> str:
    """Only a path on this site: never `//host` or `http://...`, which would send the visitor elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def repo_page(request: Request, ref: RepoRef, revision: str, tab: str, render: Callable[..., dict]) -> HTMLResponse:
    storage = get_settings(request).storage
    with readable(request, ref) as repo:
        view = repo_view(storage, ref, repo, revision)
        context = {"view": view, "tab": tab, "signed_in": can_read_private(request), **render(storage, repo, view)}
    return page(request, f"{tab}.html", context)


def card_tab(request: Request, ref: RepoRef, revision: str) -> HTMLResponse:
    def render(storage: HubStorage, repo: Repo, view: RepoView) -> dict:
        results = eval_results_json(storage, ref.id, repo) if ref.type == "model" and revision == HEAD_BRANCH else []
        return {
            "card_html": render_markdown(card_body(view.readme), view.files_url) if view.readme else None,
            "sidebar": sidebar(view),
            "eval_results": [item for item in results if "data" in item],
            "model_index": model_index_rows(view.metadata),
            "widget_examples": widget_examples(view.metadata) if ref.type == "model" else [],
            "widget_parameters": widget_parameters(view.metadata),
            "inference_url": inference_url(request),
            "is_benchmark": ref.type == "dataset" and "eval.yaml" in view.files,
            "has_viewer": ref.type == "dataset" and bool(dataset_splits(view)),
        }

    return repo_page(request, ref, revision, "card", render)


def files_tab(request: Request, ref: RepoRef, tail: str) -> HTMLResponse:
    storage = get_settings(request).storage
    with readable(request, ref) as repo:
        revision, path = storage.split_revision(repo, tail.strip("/"))
    path = validate_path(path.strip("/")) if path.strip("/") else ""

    def render(storage: HubStorage, repo: Repo, view: RepoView) -> dict:
        entries = storage.list_tree(repo, view.sha, path)
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        return {"path": path, "parent": parent if path else None, "entries": entries}

    return repo_page(request, ref, revision, "files", render)


def blob_tab(request: Request, ref: RepoRef, tail: str) -> HTMLResponse:
    storage = get_settings(request).storage
    with readable(request, ref) as repo:
        revision, path = storage.split_revision(repo, tail.strip("/"))
    path = validate_path(path)

    def render(storage: HubStorage, repo: Repo, view: RepoView) -> dict:
        entry = storage.entry(repo, view.sha, path)
        if entry is None or entry.type != "file":
            raise HubError(404, "EntryNotFound", f"{path} does not exist at {revision}")
        text = None
        if not entry.lfs_oid and entry.size <= TEXT_FILE_BYTES:
            data = storage.read_blob(repo, entry.oid)
            if b"\x00" not in data:
                text = data.decode("utf-8", "replace")
        download = f"{repo_url(ref)}/resolve/{quote(view.sha)}/{quote(path)}"
        return {"path": path, "entry": entry, "text": text, "download": download}

    return repo_page(request, ref, revision, "blob", render)


def commits_tab(request: Request, ref: RepoRef, revision: str) -> HTMLResponse:
    def render(storage: HubStorage, repo: Repo, view: RepoView) -> dict:
        commits = []
        for number, commit in enumerate(storage.log(repo, view.sha)):
            if number >= COMMITS_SHOWN:
                break
            title, _, body = commit.message.decode("utf-8", "replace").partition("\n")
            commits.append(
                {"id": commit.id.decode(), "title": title, "body": body.strip(), "date": iso_date(commit.commit_time)}
            )
        return {"commits": commits}

    return repo_page(request, ref, revision, "commits", render)


def discussions_tab(request: Request, ref: RepoRef) -> HTMLResponse:
    def render(storage: HubStorage, repo: Repo, view: RepoView) -> dict:
        items = sorted(Discussions(storage).all(repo), key=lambda item: -item["num"])
        for item in items:
            item["date"] = iso_date(item["time"])
        return {"discussions": items}

    return repo_page(request, ref, HEAD_BRANCH, "discussions", render)


def add_repo_routes(prefix: str, repo_type: str) -> None:
    base = f"{prefix}/{{namespace}}/{{name}}"

    def card(request: Request, namespace: str, name: str, revision: str = HEAD_BRANCH):
        return card_tab(request, page_ref(repo_type, namespace, name), revision)

    def tree(request: Request, namespace: str, name: str, tail: str):
        return files_tab(request, page_ref(repo_type, namespace, name), tail)

    def blob(request: Request, namespace: str, name: str, tail: str):
        return blob_tab(request, page_ref(repo_type, namespace, name), tail)

    def commits(request: Request, namespace: str, name: str, revision: str):
        return commits_tab(request, page_ref(repo_type, namespace, name), revision)

    def discussions(request: Request, namespace: str, name: str):
        return discussions_tab(request, page_ref(repo_type, namespace, name))

    for path, endpoint in (
        (base, card),
        (f"{base}/tree/{{tail:path}}", tree),
        (f"{base}/blob/{{tail:path}}", blob),
        (f"{base}/commits/{{revision:path}}", commits),
        (f"{base}/discussions", discussions),
    ):
        router.add_api_route(path, endpoint, methods=["GET"], response_class=HTMLResponse)


@router.get("/datasets/{namespace}/{name}/viewer", response_class=HTMLResponse)
def dataset_viewer(
    request: Request,
    namespace: str,
    name: str,
    revision: str = HEAD_BRANCH,
    config: str | None = None,
    split: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
):
    ref = page_ref("dataset", namespace, name)

    def render(storage: HubStorage, repo: Repo, view: RepoView) -> dict:
        configs = dataset_splits(view)
        if not configs:
            raise HubError(404, None, f"{ref.id} has no parquet files at {view.revision} to show")
        chosen_config = config if config is not None else next(iter(configs))
        if chosen_config not in configs:
            raise HubError(404, None, f"No config {chosen_config!r}; this dataset has {sorted(configs)}")
        splits = configs[chosen_config]
        chosen_split = split if split is not None else next(iter(splits))
        if chosen_split not in splits:
            raise HubError(404, None, f"No split {chosen_split!r} in {chosen_config}; it has {sorted(splits)}")
        files = [open_parquet(storage, repo, view, path) for path in splits[chosen_split]]
        columns, rows, total = read_rows(files, offset, VIEWER_PAGE_ROWS)

        def link(**changes) -> str:
            query = {"revision": view.revision, "config": chosen_config, "split": chosen_split, "offset": 0}
            return f"/datasets/{ref.id}/viewer?" + urlencode(query | changes)

        return {
            "configs": {name: list(split_files) for name, split_files in configs.items()},
            "config": chosen_config,
            "split": chosen_split,
            "columns": columns,
            "rows": rows,
            "total": total,
            "offset": offset,
            "first_row": offset + 1 if rows else 0,
            "previous": link(offset=max(offset - VIEWER_PAGE_ROWS, 0)) if offset > 0 else None,
            "next": link(offset=offset + VIEWER_PAGE_ROWS) if offset + VIEWER_PAGE_ROWS < total else None,
            "split_link": lambda config_name, split_name: link(config=config_name, split=split_name),
        }

    return repo_page(request, ref, revision, "viewer", render)


@router.get("/datasets/{namespace}/{name}/leaderboard", response_class=HTMLResponse)
def dataset_leaderboard_page(
    request: Request, namespace: str, name: str, task_id: str | None = None, base_model: bool = False
):
    """The ranking `get_dataset_leaderboard(id, base_model_only=base_model)` returns (every model by default, as
    the project's leaderboard shows it; `?base_model=true` keeps the Hub's default filter)."""
    ref = page_ref("dataset", namespace, name)
    show_private = can_read_private(request)

    def render(storage: HubStorage, repo: Repo, view: RepoView) -> dict:
        benchmark = read_benchmark(storage, repo, ref.id)
        entries = leaderboard_json(storage, ref.id, benchmark, task_id, base_model, show_private, LOCAL_USER)
        chosen = task_id or benchmark.tasks[0].id
        return {"benchmark": benchmark, "task_id": chosen, "entries": entries, "base_model": base_model}

    return repo_page(request, ref, HEAD_BRANCH, "leaderboard", render)


# The dataset and space pages first: the model routes (no prefix) would match `/datasets/x/...` too.
add_repo_routes("/datasets", "dataset")
add_repo_routes("/spaces", "space")
add_repo_routes("", "model")
