"""The Hub's pagination: one page of a listing, and a `Link: <next page>; rel="next"` header while more remain.

huggingface_hub follows the link as is (`utils/_pagination.py`), so it carries every query parameter; the cursor is
the offset of the next page's first item.
"""

from collections.abc import Callable, Iterable
from itertools import islice

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import URL

from dialoghub.hub.server.validation import HubError

CURSOR_PARAMETER = "cursor"
DEFAULT_PAGE_SIZE = 1000  # the Hub's cap on one page


def page_response(
    request: Request,
    items: Iterable,
    page_size: int,
    to_json: Callable = lambda item: item,
    next_url: URL | None = None,
) -> JSONResponse:
    """The page at the request's cursor. `next_url` pins what the next page lists (a commit sha for a branch)."""
    cursor = request.query_params.get(CURSOR_PARAMETER, "0")
    if not cursor.isdigit():
        raise HubError(400, None, f"Invalid cursor {cursor!r}")
    offset = int(cursor)
    page = list(islice(items, offset, offset + page_size + 1))
    headers = {}
    if len(page) > page_size:
        page = page[:page_size]
        link = (next_url or request.url).include_query_params(**{CURSOR_PARAMETER: offset + page_size})
        headers["Link"] = f'<{link}>; rel="next"'
    return JSONResponse([to_json(item) for item in page], headers=headers)
