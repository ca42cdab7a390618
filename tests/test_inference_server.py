"""The inference server as a separate process: the unmodified `InferenceClient` gets chat completions (plain and
streamed) from a tiny adapter published to the test Hub; bad requests get 4xx."""

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, InferenceClient
from huggingface_hub.errors import HfHubHTTPError

from dialoghub.core.processes import GroupProcess
from dialoghub.hub.client import free_loopback_port
from tests.tiny_models import publish_tiny_base_and_adapter

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_NEW_TOKENS_CAP = 32


@dataclass
class TinyModels:
    base: str
    adapter: str
    adapter_sha: str


def publish_tiny_adapter(api: HfApi, prefix: str, folder: Path) -> TinyModels:
    """A tiny base model and a LoRA adapter on it (with a widget card), published under `prefix`."""
    base_id, adapter_id = f"{prefix}-base", f"{prefix}-summarizer-lora"
    commit = publish_tiny_base_and_adapter(api, base_id, adapter_id, folder)
    return TinyModels(base_id, adapter_id, commit)


class InferenceServer:
    """`python -m dialoghub.inference serve` on a free loopback port, reading models from `hub_endpoint`."""

    def __init__(self, hub_endpoint: str, log_path: Path, allow_origin: str | None = None, port: int | None = None):
        self.port = port or free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "dialoghub.inference", "serve", "--port", str(self.port)]
        command += ["--max-new-tokens", str(MAX_NEW_TOKENS_CAP), "--max-waiting", "2"]
        if allow_origin:
            command += ["--allow-origin", allow_origin]
        env = {**os.environ, "HF_ENDPOINT": hub_endpoint}
        with open(log_path, "ab") as log:
            self.process = GroupProcess(
                command, grace=10, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env
            )
        self.log_path = log_path
        for _ in range(1200):  # bounded: about two minutes for torch and transformers to import
            if self.process.poll() is not None:
                raise RuntimeError(f"the inference server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.process.end()
        raise TimeoutError(f"the inference server did not answer on {self.url}")

    def stop(self) -> None:
        self.process.end()


@pytest.fixture(scope="module")
def tiny_models(hub, tmp_path_factory):
    api = HfApi(endpoint=hub.endpoint)
    return publish_tiny_adapter(api, f"tests/inference-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def inference_server(hub, tmp_path_factory):
    server = InferenceServer(hub.endpoint, tmp_path_factory.mktemp("inference") / "server.log")
    yield server
    server.stop()


MESSAGES = [{"role": "user", "content": "Customer: my order is late.\nAgent: sorry, let me check."}]


def test_inference_client_gets_a_completion_and_a_streamed_one(tiny_models, inference_server):
    client = InferenceClient(base_url=inference_server.url)
    output = client.chat_completion(MESSAGES, model=tiny_models.adapter, max_tokens=8)
    answer = output.choices[0].message.content
    assert isinstance(answer, str) and output.choices[0].message.role == "assistant"
    assert output.model == tiny_models.adapter and output.choices[0].finish_reason in ("stop", "length")
    assert 1 <= output.usage.completion_tokens <= 8 and output.usage.prompt_tokens > 0
    assert output.system_fingerprint == f"dialoghub-{tiny_models.adapter_sha[:12]}"

    chunks = list(client.chat_completion(MESSAGES, model=tiny_models.adapter, max_tokens=8, stream=True))
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert streamed == answer  # greedy: the same text, in pieces
    assert chunks[-1].choices[0].finish_reason == output.choices[0].finish_reason
    assert all(chunk.choices[0].finish_reason is None for chunk in chunks[:-1])

    # Pinned revisions, as `ID@REV` or the `revision` field, and sampling parameters.
    pinned = client.chat_completion(MESSAGES, model=f"{tiny_models.adapter}@{tiny_models.adapter_sha}", max_tokens=8)
    assert pinned.choices[0].message.content == answer
    extra = client.chat_completion(
        MESSAGES, model=tiny_models.adapter, max_tokens=8, extra_body={"revision": tiny_models.adapter_sha[:10]}
    )
    assert extra.system_fingerprint == output.system_fingerprint
    sampled = client.chat_completion(
        MESSAGES, model=tiny_models.adapter, max_tokens=6, temperature=0.8, top_p=0.9, seed=3
    )
    again = client.chat_completion(
        MESSAGES, model=tiny_models.adapter, max_tokens=6, temperature=0.8, top_p=0.9, seed=3
    )
    assert sampled.choices[0].message.content == again.choices[0].message.content  # seeded: reproducible
    base = client.chat_completion(MESSAGES, model=tiny_models.base, max_tokens=4)  # a plain model repo too
    assert base.model == tiny_models.base

    models = httpx.get(f"{inference_server.url}/v1/models").json()["data"]
    assert {tiny_models.adapter, tiny_models.base} <= {model["id"] for model in models}


def test_bad_requests_get_4xx(tiny_models, inference_server):
    client = InferenceClient(base_url=inference_server.url)
    with pytest.raises(HfHubHTTPError) as error:
        client.chat_completion(MESSAGES, model="tests/no-such-model", max_tokens=4)
    assert error.value.response.status_code == 404
    with pytest.raises(HfHubHTTPError) as error:
        client.chat_completion(MESSAGES, model=f"{tiny_models.adapter}@no-such-branch", max_tokens=4)
    assert error.value.response.status_code == 404
    with pytest.raises(HfHubHTTPError) as error:
        client.chat_completion(MESSAGES, model=tiny_models.adapter, max_tokens=MAX_NEW_TOKENS_CAP + 1)
    assert error.value.response.status_code == 400

    url = f"{inference_server.url}/v1/chat/completions"
    bad_bodies = [
        b"{not json",
        b"[]",
        b'{"model": "a/b"}',
        b'{"model": "a/b", "messages": []}',
        b'{"model": "a/b", "messages": [{"role": "wizard", "content": "x"}]}',
        b'{"model": "a/b", "messages": [{"role": "user", "content": 5}]}',
        b'{"messages": [{"role": "user", "content": "x"}]}',
        b'{"model": "/etc", "messages": [{"role": "user", "content": "x"}]}',
        b'{"model": "../../etc/passwd", "messages": [{"role": "user", "content": "x"}]}',
        b'{"model": "a/b", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}',
        b'{"model": "a/b", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1e12}',
        b'{"model": "a/b", "messages": [{"role": "user", "content": "x"}], "n": 2}',
        b'{"model": "a/b", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
        b'{"model": "a/b", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}',
    ]
    for body in bad_bodies:
        response = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (body, response.status_code, response.text)
        assert "error" in response.json()
    not_a_model = httpx.post(url, json={"model": "tests/none", "messages": MESSAGES, "stream": True})
    assert not_a_model.status_code == 404
    too_long = httpx.post(
        url, json={"model": tiny_models.adapter, "messages": [{"role": "user", "content": "word " * 5000}]}
    )
    assert too_long.status_code == 400, too_long.text  # more tokens than the model has positions
    log = inference_server.log_path.read_text()
    assert "Traceback" not in log, log
