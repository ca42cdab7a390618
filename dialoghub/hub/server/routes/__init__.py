"""The embedded Hub's HTTP API, one router per concern.

`ROUTERS` is the one place routers are registered; `create_app` includes them in this order. Order matters where
patterns overlap: the model-repo routes without a type prefix (`/{namespace}/{name}/resolve/...`) must not shadow
the prefixed ones, so `files` and `lfs` register their prefixed routes first. Add a new router as one line here.
"""

from dialoghub.hub.server.routes import (
    commits,
    discussions,
    evaluations,
    files,
    git_http,
    lfs,
    manage,
    refs,
    repos,
    service,
)

ROUTERS = [
    service.router,
    repos.router,
    refs.router,
    commits.router,
    files.router,
    lfs.router,
    manage.router,
    discussions.router,
    evaluations.router,
    git_http.router,
]
