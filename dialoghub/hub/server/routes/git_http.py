"""`git clone http://HOST/ORG/NAME` (and `datasets/...`): git's smart HTTP protocol, read-only, served by dulwich.

dulwich's WSGI application (`dulwich.web`) speaks the protocol; this module only decides which repo a URL names and
whether the caller may read it, then hands the request over. Only `git-upload-pack` (fetch and clone) is offered,
so a push is refused. LFS files arrive through the LFS batch API, which git-lfs finds at `ORG/NAME.git/info/lfs`.
"""

from contextlib import closing

from dulwich.errors import GitProtocolError, NotGitRepository
from dulwich.repo import Repo
from dulwich.server import Backend
from dulwich.web import GunzipFilter, HTTPGitApplication, LimitedInputFilter
from fastapi import APIRouter
from starlette.middleware.wsgi import WSGIMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from dialoghub.hub.server.dependencies import get_storage, has_valid_token
from dialoghub.hub.server.storage import HubStorage
from dialoghub.hub.server.validation import REPO_TYPES, HubError, validate_repo_id

READ_ONLY_SERVICE = b"git-upload-pack"


class OneRepoBackend(Backend):
    """The repo of one request, whatever path dulwich asks for; closed when the request is done."""

    def __init__(self, storage: HubStorage, repo_type: str, repo_id: str):
        self.storage, self.repo_type, self.repo_id = storage, repo_type, repo_id
        self.opened: list[Repo] = []

    def open_repository(self, path) -> Repo:
        try:
            repo = self.storage.open(self.repo_type, self.repo_id)
        except HubError as error:
            raise NotGitRepository(error.message) from error
        self.opened.append(repo)
        return repo

    def close(self) -> None:
        for repo in self.opened:
            repo.close()


def with_write_callable(application):
    """dulwich writes its responses through the `write` callable `start_response` returns (PEP 3333), which
    Starlette's WSGI adapter does not provide: collect what it writes and hand it on as the response body.

    The body is a pack of git objects only (large files are LFS, fetched separately), so holding it is cheap, and
    holding it lets a request git can't parse get a 400 instead of a 200 cut short.
    """

    def wrapped(environ, start_response):
        written: list[bytes] = []
        status_and_headers = []

        def start_with_write(status, headers, exc_info=None):
            status_and_headers[:] = [status, headers]
            return written.append

        try:
            written.extend(application(environ, start_with_write))
        # GitProtocolError covers a client hanging up mid-request too; dulwich (1.2) checks an empty pkt-line
        # (`0004`) with an assert.
        except (GitProtocolError, AssertionError) as error:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [f"Invalid git request: {error}".encode()]
        start_response(*status_and_headers)
        return written

    return wrapped


def read_only_git_application(backend: Backend):
    """dulwich's smart HTTP application wrapped like `dulwich.web.make_wsgi_chain`, without `git-receive-pack`."""
    application = HTTPGitApplication(backend)
    application.handlers = {READ_ONLY_SERVICE: application.handlers[READ_ONLY_SERVICE]}
    return with_write_callable(LimitedInputFilter(GunzipFilter(application)))


class GitSmartHttp:
    """The ASGI endpoint of `{prefix}/{namespace}/{name}(.git)/{info/refs,git-upload-pack}` for one repo type."""

    def __init__(self, repo_type: str):
        self.repo_type = repo_type

    def _is_public(self, storage: HubStorage, repo_id: str) -> bool:
        if not storage.exists(self.repo_type, repo_id):
            return False
        with closing(storage.open(self.repo_type, repo_id)) as repo:
            return not storage.is_private(repo)

    async def __call__(self, scope, receive, send):
        request = Request(scope, receive)
        storage = get_storage(request)
        if request.method == "GET" and request.query_params.get("service") != READ_ONLY_SERVICE.decode():
            # Neither a push (`git-receive-pack`) nor git's dumb protocol, which dulwich would serve without it.
            message = "This Hub serves git read-only: clone and fetch (git-upload-pack) over smart HTTP"
            return await PlainTextResponse(message, status_code=403)(scope, receive, send)
        try:
            repo_id = validate_repo_id(scope["path_params"]["namespace"], scope["path_params"]["name"])
        except HubError as error:
            return await PlainTextResponse(error.message, status_code=error.status)(scope, receive, send)
        if not has_valid_token(request) and not self._is_public(storage, repo_id):
            # As on the Hub, a private repo and a missing one look alike; git then asks for credentials.
            challenge = {"WWW-Authenticate": 'Basic realm="dialoghub"'}
            response = PlainTextResponse("Repository not found", status_code=401, headers=challenge)
            return await response(scope, receive, send)
        backend = OneRepoBackend(storage, self.repo_type, repo_id)
        try:
            await WSGIMiddleware(read_only_git_application(backend))(scope, receive, send)
        finally:
            backend.close()


def git_routes() -> list[Route]:
    routes = []
    # Model repos have no prefix, so their routes come last.
    for repo_type in ("dataset", "space", "model"):
        prefix = "" if repo_type == "model" else f"/{REPO_TYPES[repo_type]}"
        endpoint = GitSmartHttp(repo_type)
        for repo_path in ("{namespace}/{name}.git", "{namespace}/{name}"):
            routes.append(Route(f"{prefix}/{repo_path}/info/refs", endpoint, methods=["GET"]))
            routes.append(Route(f"{prefix}/{repo_path}/git-upload-pack", endpoint, methods=["POST"]))
    return routes


router = APIRouter()
router.routes.extend(git_routes())
