"""Malformed requests get a 4xx, never a 5xx or a dropped connection; the HTTP server's limits hold."""

import base64
import contextlib
import itertools
import json
import re
import socket
import typing

import httpx
import pytest

from dialoghub.hub.client import start_hub
from dialoghub.hub.server.dependencies import Body
from dialoghub.hub.server.routes import ROUTERS

WRONG_VALUES = [None, True, -1, 1.5, "abc", "欠落", "a\r\nb", [], [1], ["x"], {}, {"a": 1}]
SHAPES = [b"", b"{", b"null", b"1", b'"s"', b"[]", b"[1]", b"{}", b"\xff\xfe", b"[" * 100_000, b'{"a":' * 50_000]


def json_bodies(fields: dict[str, object]) -> list[bytes]:
    """The valid body with each field in turn replaced by each wrong value or removed, plus malformed shapes."""
    bodies = list(SHAPES) + [json.dumps(fields).encode()]
    for name in fields:
        bodies.append(json.dumps({key: value for key, value in fields.items() if key != name}).encode())
        for wrong in WRONG_VALUES:
            bodies.append(json.dumps({**fields, name: wrong}).encode())
    return bodies


def commit_bodies() -> list[bytes]:
    header = {"key": "header", "value": {"summary": "s"}}
    operations = {
        "file": {"path": "f.txt", "content": base64.b64encode(b"x").decode(), "encoding": "base64"},
        "lfsFile": {"path": "f.bin", "algo": "sha256", "oid": "a" * 64, "size": 1},
        "deletedFile": {"path": "f.txt"},
        "deletedFolder": {"path": "d/"},
    }
    bodies = [b"\n".join([json.dumps(header).encode(), shape]) for shape in SHAPES]
    for wrong in WRONG_VALUES:
        bodies.append(json.dumps({"key": "header", "value": wrong}).encode())
        bodies.append(json.dumps(header).encode() + b"\n" + json.dumps({"key": wrong, "value": {}}).encode())
    for key, value in operations.items():
        for wrong in WRONG_VALUES:
            bodies.append(json.dumps(header).encode() + b"\n" + json.dumps({"key": key, "value": wrong}).encode())
            for field in value:
                line = {"key": key, "value": {**value, field: wrong}}
                bodies.append(json.dumps(header).encode() + b"\n" + json.dumps(line).encode())
    bodies.append(json.dumps(header).encode() + b"\n" + json.dumps(operations["file"] | {"content": "!!"}).encode())
    return bodies


def endpoints(repo_id: str) -> list[tuple[str, str, list[bytes]]]:
    api = f"/api/models/{repo_id}"
    return [
        ("POST", "/api/repos/create", json_bodies({"name": "n", "organization": "o", "type": "model", "private": 0})),
        ("DELETE", "/api/repos/delete", json_bodies({"name": "n", "organization": "o", "type": "model"})),
        ("POST", "/api/validate-yaml", json_bodies({"content": "---\na: 1\n---\n", "repoType": "model"})),
        ("POST", f"{api}/preupload/main", json_bodies({"files": [{"path": "a.txt", "size": 1, "sample": "eA=="}]})),
        ("POST", f"{api}/preupload/main", json_bodies({"files": [1]})),
        ("POST", f"{api}/preupload/main", json_bodies({"files": [{"path": 5, "size": "abc", "sample": "!!"}]})),
        ("POST", f"{api}/paths-info/main", json_bodies({"paths": ["a.txt"], "expand": True})),
        ("POST", f"{api}/commit/main", commit_bodies()),
        ("POST", f"{api}/tag/main", json_bodies({"tag": "t", "message": "m"})),
        ("POST", f"{api}/branch/b", json_bodies({"startingPoint": "main"})),
        ("POST", f"/{repo_id}.git/info/lfs/objects/batch", json_bodies({"operation": "upload", "objects": [{}]})),
        ("POST", f"/{repo_id}.git/info/lfs/objects/batch", json_bodies({"operation": "download", "objects": [1]})),
        ("PUT", f"/lfs-upload/model/{repo_id}/{'a' * 64}/abc?sig=x", SHAPES),
    ]


def plausible(annotation) -> object:
    """A value of the field's type, so that the other fields of a body pass while one is replaced."""
    arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return arguments[0]
    if origin in (list, dict):
        return origin()
    if arguments and origin is not typing.Annotated:
        return plausible(arguments[0])
    if origin is typing.Annotated:
        return plausible(arguments[0])
    if isinstance(annotation, type) and issubclass(annotation, Body):
        return {name: plausible(field.annotation) for name, field in annotation.model_fields.items()}
    return {str: "x", int: 1, bool: True, float: 1.0, bytes: "eA=="}.get(annotation, "x")


def body_models(dependant) -> set[type[Body]]:
    """The Body models a route validates, found in its dependency tree (`json_body(Model)` closures)."""
    models = set()
    for cell in getattr(dependant.call, "__closure__", None) or ():
        value = cell.cell_contents
        if isinstance(value, type) and issubclass(value, Body):
            models.add(value)
    for child in dependant.dependencies:
        models |= body_models(child)
    return models


PATH_VALUES = {"type_prefix": "models", "revision": "main", "path": "a.txt", "oid": "a" * 64, "size": "1"}


def every_route(repo_id: str) -> list[tuple[str, str, list[bytes]]]:
    """Each registered route and method, its path parameters filled in, with bodies made from its Body models."""
    namespace, name = repo_id.split("/")
    values = {"namespace": namespace, "name": name, "repo_type": "model", **PATH_VALUES}
    requests = []
    for router in ROUTERS:
        for route in router.routes:
            if not hasattr(route, "dependant"):
                continue
            url = re.sub(r"\{(\w+)(?::\w+)?\}", lambda match: values.get(match.group(1), "1"), route.path)
            bodies = list(SHAPES)
            for model in body_models(route.dependant):
                bodies += json_bodies(plausible(model))
            requests += [(method, url, bodies) for method in sorted(route.methods)]
    return requests


READ_URLS = [
    "/api/models/{repo}/revision/a%0D%0Ab",
    "/api/models/{repo}/revision/%E6%AC%A0%E8%90%BD",
    "/api/models/{repo}/tree/%E6%AC%A0/sub",
    "/api/models/{repo}/tree/main/%E6%AC%A0%E8%90%BD",
    "/api/models/{repo}/commits/a%0D%0AX-Injected:%201",
    "/{repo}/resolve/main/%E6%AC%A0%E8%90%BD.txt",
    "/{repo}/resolve/a%0D%0Ab/x.txt",
    "/{repo}/resolve/main/%FF%FE.txt",
    "/api/models?limit=abc",
    "/api/models?limit=-5",
    "/api/nothing-like-a-type/x/y",
    "/lfs-objects/model/{repo}/{oid}?expires=abc&sig=x",
    "/lfs-objects/model/{repo}/..%2F..%2Fetc?expires=1&sig=x",
]


def test_a_corpus_of_malformed_requests_gets_no_5xx(hub, hub_api, repo_name):
    hub_api.create_repo(repo_name)
    hub_api.upload_file(path_or_fileobj=b"x", path_in_repo="a.txt", repo_id=repo_name)
    server_errors = []
    sent = 0
    with httpx.Client(base_url=hub.endpoint, timeout=60) as client:
        for method, url, bodies in endpoints(repo_name) + every_route(repo_name):
            for body in bodies:
                response = client.request(method, url, content=body, headers={"content-type": "application/json"})
                sent += 1
                if response.status_code >= 500:
                    server_errors.append((method, url, body[:80], response.status_code))
        for template, verb in itertools.product(READ_URLS, ("GET", "HEAD")):
            url = template.format(repo=repo_name, oid="a" * 64)
            response = client.request(verb, url)
            sent += 1
            if response.status_code >= 500:
                server_errors.append((verb, url, b"", response.status_code))
    assert server_errors == []
    assert sent > 1500


def test_named_malformed_inputs_get_the_right_4xx(hub, hub_api, repo_name):
    hub_api.create_repo(repo_name)
    assert hub_api.file_exists(repo_name, "欠落.txt") is False
    assert hub_api.file_exists("org/no-such-repo", "欠落.txt") is False
    response = httpx.get(f"{hub.endpoint}/{repo_name}/resolve/a%0D%0AX-Injected:%201/a.txt")
    assert response.status_code == 404 and "x-injected" not in response.headers
    assert response.headers["x-error-code"] == "RevisionNotFound"
    assert "\\r\\n" in response.headers["x-error-message"]  # echoed JSON-escaped, not raw
    assert httpx.get(f"{hub.endpoint}/api/models/{repo_name}/revision/a%0D%0Ab").status_code == 404
    response = httpx.get(f"{hub.endpoint}/{repo_name}/resolve/main/%E6%AC%A0%E8%90%BD.txt")
    assert response.status_code == 404 and response.headers["x-error-code"] == "EntryNotFound"
    tag = httpx.post(f"{hub.endpoint}/api/models/{repo_name}/tag/main", json={"tag": "t", "message": 5})
    assert tag.status_code == 400


@pytest.fixture
def limited_hub(tmp_path):
    server = start_hub(
        tmp_path / "root",
        log_path=tmp_path / "server.log",
        extra_args=("--max-headers", "50", "--max-header-kb", "8", "--header-timeout", "1", "--max-connections", "4"),
    )
    yield server
    server.stop()


def raw_connection(endpoint: str) -> socket.socket:
    host, port = endpoint.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    return connection


def test_header_count_and_size_are_capped(limited_hub):
    health = f"{limited_hub.endpoint}/api/dialoghub/health"
    assert httpx.get(health, headers={f"x-h{index}": "v" for index in range(30)}).status_code == 200
    # Over the count cap, under the byte cap (about 1.5 KB of 8): h11 takes the whole block, so the count alone
    # refuses it, a 431 on a connection read to its end.
    assert httpx.get(health, headers={f"x{index}": "v" for index in range(200)}).status_code == 431
    # Over the byte cap: a 431 when the block arrives whole, h11's 400 when it arrives in pieces, and then h11 may
    # close while the client is still sending, which can lose that answer to a reset: never the health answer.
    for size in (20_000, 1_000_000):
        with contextlib.suppress(httpx.TransportError):
            assert httpx.get(health, headers={"x-big": "v" * size}).status_code in (400, 431)
    # The same oversized header block, trickled in pieces, is refused by h11 before it is complete: a 400, or a
    # connection closed under the client (which can lose the 400 to a reset), never the health answer.
    connection = raw_connection(limited_hub.endpoint)
    with connection:
        reply = b""
        try:
            connection.sendall(b"GET /api/dialoghub/health HTTP/1.1\r\nHost: x\r\n")
            for _ in range(20):
                connection.sendall(b"x-piece: " + b"v" * 1000 + b"\r\n")
            connection.sendall(b"\r\n")
            reply = connection.recv(100)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert reply == b"" or reply.startswith(b"HTTP/1.1 400"), reply


def test_a_client_slow_to_send_its_headers_is_disconnected(limited_hub):
    connection = raw_connection(limited_hub.endpoint)
    with connection:
        connection.sendall(b"GET /api/dialoghub/health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        assert connection.recv(100) == b""  # closed by the server (the socket's own timeout would raise instead)
    assert httpx.get(f"{limited_hub.endpoint}/api/dialoghub/health").status_code == 200


def test_connections_beyond_the_cap_get_503(limited_hub):
    health = f"{limited_hub.endpoint}/api/dialoghub/health"
    assert httpx.get(health).status_code == 200
    idle = [raw_connection(limited_hub.endpoint) for _ in range(4)]
    try:
        assert httpx.get(health).status_code == 503
    finally:
        for connection in idle:
            connection.close()
