"""The Hub's web pages, against a real server with a token, after publishing tiny repos: over HTTP, and in headless
Chromium with the inference widget answered by a real inference server (screenshots of every page are saved to the
test's temporary folder).

Chromium and ChromeDriver come from Debian's `chromium` and `chromium-driver` packages, which `.ci/run` installs.
"""

import io
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import CommitOperationAdd, HfApi
from PIL import Image

from dialoghub.hub.client import free_loopback_port, start_hub
from tests.browser import headless_chromium
from tests.test_inference_server import InferenceServer, publish_tiny_adapter

TOKEN = "pages-s3cret"
TASK = "summary"
SPLIT_ROWS = {"train": 45, "validation": 7, "test": 5}
HOSTILE_CARD = """---
license: mit
tags: [hostile]
---
# Hostile card

<script>window.__pwned = "script";</script>
<img src="x" onerror="window.__pwned = 'onerror'">
<svg onload="window.__pwned = 'svg'"></svg>
<iframe srcdoc="<script>parent.__pwned = 'iframe'</script>"></iframe>
<a href="javascript:window.__pwned = 'link'">click me</a>
<div style="background:url(javascript:alert(1))" onclick="window.__pwned = 'click'">styled</div>
"""


@dataclass
class World:
    hub: object
    api: HfApi
    summarizer: str
    summarizer_sha: str
    base: str
    dataset: str
    first_dataset_commit: str
    others: list[str]
    hostile: str
    secret: str
    inference: InferenceServer


def summarizer_card(base_id: str, dataset_id: str, dataset_sha: str) -> str:
    metadata = {
        "base_model": base_id,
        "library_name": "peft",
        "pipeline_tag": "text-generation",
        "license": "apache-2.0",
        "datasets": [dataset_id],
        "tags": ["lora", "summarization", "dialoghub"],
        "widget": [
            {
                "example_title": "Late order",
                "messages": [{"role": "user", "content": "Customer: my order is late.\nAgent: let me check."}],
            }
        ],
        "inference": {"parameters": {"max_new_tokens": 8, "do_sample": False}},
        "model-index": [
            {
                "name": "summarizer",
                "results": [
                    {
                        "task": {"type": "summarization", "name": "Summarization"},
                        "dataset": {"type": dataset_id, "name": "tiny", "split": "test", "revision": dataset_sha},
                        "metrics": [
                            {"type": "rougeL", "name": "ROUGE-L", "value": 41.9},
                            {"type": "rougeL", "name": "tweetsumm-abstractive/ref1_rougeL", "value": 32.80012345678},
                        ],
                    }
                ],
            }
        ],
    }
    body = "# Summarizer adapter\n\nSummarizes a **customer-support** dialogue.\n\n| split | rows |\n|---|---|\n"
    body += "| test | 5 |\n\n![Loss curve](loss_curve.png)\n\n[The adapter's config](adapter_config.json)\n"
    return f"---\n{yaml.safe_dump(metadata, sort_keys=False)}---\n{body}"


def parquet_bytes(split: str, count: int) -> bytes:
    table = pa.table(
        {
            "conversation_id": [f"{split}-{index:03d}" for index in range(count)],
            "dialogue": [f"Customer: question {index} of {split}\nAgent: answer {index}" for index in range(count)],
            "turns": [[index, index + 1] for index in range(count)],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=10)
    return sink.getvalue()


def png_bytes() -> bytes:
    sink = io.BytesIO()
    Image.new("RGB", (40, 20), "steelblue").save(sink, format="PNG")
    return sink.getvalue()


def eval_results(dataset_id: str, value: float, verify_token: str | None = None) -> bytes:
    entry = {"dataset": {"id": dataset_id, "task_id": TASK}, "value": value, "date": "2026-12-01"}
    if verify_token:
        entry["verifyToken"] = verify_token
    return yaml.safe_dump([entry]).encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages-world")
    inference_port = free_loopback_port()
    inference_url = f"http://127.0.0.1:{inference_port}"
    hub = start_hub(folder / "root", token=TOKEN, extra_args=("--inference-url", inference_url))
    inference = None
    try:
        api = HfApi(endpoint=hub.endpoint, token=TOKEN)
        prefix = f"org/pages-{uuid.uuid4().hex[:6]}"
        tiny = publish_tiny_adapter(api, prefix, folder)

        dataset = f"{prefix}-bench"
        api.create_repo(dataset, repo_type="dataset")
        configs = [{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in SPLIT_ROWS]}]
        card = f"---\n{yaml.safe_dump({'license': 'mit', 'configs': configs})}---\n# Tiny benchmark\n"
        files = [CommitOperationAdd("README.md", card.encode())]
        files += [
            CommitOperationAdd(f"data/{split}-00000-of-00001.parquet", parquet_bytes(split, count))
            for split, count in SPLIT_ROWS.items()
        ]
        first = api.create_commit(dataset, files, commit_message="data", repo_type="dataset").oid
        benchmark = {"name": "Tiny bench", "evaluation_framework": "dialoghub", "tasks": [{"id": TASK}]}
        api.upload_file(
            path_or_fileobj=yaml.safe_dump(benchmark).encode(), path_in_repo="eval.yaml", repo_id=dataset,
            repo_type="dataset",
        )  # fmt: skip

        card_files = [
            CommitOperationAdd("README.md", summarizer_card(tiny.base, dataset, first).encode()),
            CommitOperationAdd("loss_curve.png", png_bytes()),
        ]
        api.create_commit(tiny.adapter, card_files, commit_message="card")
        api.create_tag(tiny.adapter, tag="v1.0")

        # A verification record, and three more models ranked with the summarizer on the benchmark.
        results_repo = f"{prefix}-verifications"
        api.create_repo(results_repo, repo_type="dataset")
        others = [f"{prefix}-model-{letter}" for letter in "abc"]
        record = {
            "status": "verified", "model_id": others[1], "eval_results_file": f".eval_results/{TASK}.yaml",
            "entries": [{"dataset_id": dataset, "task_id": TASK, "value": 37.5, "dataset_revision": None}],
        }  # fmt: skip
        record_commit = api.upload_file(
            path_or_fileobj=json.dumps(record).encode(), path_in_repo="verifications/b.json",
            repo_id=results_repo, repo_type="dataset",
        ).oid  # fmt: skip
        token = f"datasets/{results_repo}/blob/{record_commit}/verifications/b.json"
        values = {others[0]: 12.5, others[1]: 37.5, others[2]: 50.0, tiny.adapter: 41.9}
        for model_id, value in values.items():
            verify_token = token if model_id == others[1] else None
            api.create_repo(model_id, exist_ok=True)
            api.upload_file(
                path_or_fileobj=eval_results(dataset, value, verify_token), path_in_repo=f".eval_results/{TASK}.yaml",
                repo_id=model_id,
            )  # fmt: skip

        hostile = f"{prefix}-hostile"
        api.create_repo(hostile)
        api.upload_file(path_or_fileobj=HOSTILE_CARD.encode(), path_in_repo="README.md", repo_id=hostile)
        secret = f"{prefix}-secret"
        api.create_repo(secret, private=True)
        api.upload_file(path_or_fileobj=b"# Secret card\n", path_in_repo="README.md", repo_id=secret)

        inference = InferenceServer(
            hub.endpoint, folder / "inference.log", allow_origin=hub.endpoint, port=inference_port
        )
        yield World(
            hub, api, tiny.adapter, tiny.adapter_sha, tiny.base, dataset, first, others, hostile, secret, inference
        )
    finally:
        if inference is not None:
            inference.stop()
        hub.stop()


def get(world: World, path: str, **kwargs) -> httpx.Response:
    return httpx.get(f"{world.hub.endpoint}{path}", **kwargs)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ----- over HTTP ---------------------------------------------------------------------------------------------------
def test_home_lists_repos_by_kind_and_searches(world):
    page = get(world, "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for repo_id in (world.summarizer, world.base, world.hostile, *world.others):
        assert f'href="/{repo_id}"' in page.text
    assert f'href="/datasets/{world.dataset}"' in page.text
    assert world.secret not in page.text  # private, and no token
    searched = get(world, "/", params={"search": "hostile"})
    assert world.hostile in searched.text and world.summarizer not in searched.text
    assert world.secret in get(world, "/", headers={"Authorization": f"Bearer {TOKEN}"}).text


def test_model_page_card_sidebar_eval_results_and_tabs(world):
    page = get(world, f"/{world.summarizer}")
    assert page.status_code == 200
    assert "<h1>Summarizer adapter</h1>" in page.text and "<strong>customer-support</strong>" in page.text
    assert "<table>" in page.text  # markdown tables render
    assert f'href="/{world.base}"' in page.text  # base model
    assert f"/datasets/{world.dataset}?revision={world.first_dataset_commit}" in page.text  # dataset at its revision
    assert "apache-2.0" in page.text and "summarization" in page.text
    assert 'class="eval-row"' in page.text and "41.9" in page.text and "ROUGE-L" in page.text
    assert ">32.8001<" in page.text  # shown to 4 decimals, as the Hub does
    assert 'id="inference-widget"' in page.text and "Late order" in page.text
    assert "widget-unconfigured" not in page.text
    # A card's relative image and link mean files of the repo at the page's revision, as on the Hub.
    image = f'src="/{world.summarizer}/resolve/main/loss_curve.png"'
    assert image in page.text and f'href="/{world.summarizer}/resolve/main/adapter_config.json"' in page.text
    assert get(world, f"/{world.summarizer}/resolve/main/loss_curve.png").content == png_bytes()
    tagged = get(world, f"/{world.summarizer}", params={"revision": "v1.0"}).text
    assert f'src="/{world.summarizer}/resolve/v1.0/loss_curve.png"' in tagged
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and world.inference.url in csp and "unsafe-inline" not in csp.split("style")[0]

    files = get(world, f"/{world.summarizer}/tree/main")
    assert "adapter_config.json" in files.text and "adapter_model.safetensors" in files.text
    blob = get(world, f"/{world.summarizer}/blob/main/adapter_config.json")
    assert "base_model_name_or_path" in blob.text
    commits = get(world, f"/{world.summarizer}/commits/main")
    assert commits.text.count('class="commit-row"') == len(world.api.list_repo_commits(world.summarizer))
    assert get(world, f"/{world.summarizer}/discussions").status_code == 200
    # The API is untouched by the pages.
    assert get(world, f"/api/models/{world.summarizer}").json()["id"] == world.summarizer
    assert get(world, f"/{world.summarizer}/resolve/main/README.md").text.startswith("---")


def test_pages_at_a_revision(world):
    before_card = world.summarizer_sha  # the adapter upload, before its card
    page = get(world, f"/{world.summarizer}", params={"revision": before_card})
    assert page.status_code == 200 and "Summarizer adapter" not in page.text and before_card[:12] in page.text
    assert "Summarizer adapter" in get(world, f"/{world.summarizer}", params={"revision": "v1.0"}).text
    tree = get(world, f"/{world.summarizer}/tree/{before_card[:7]}")  # a short sha, as on the Hub
    assert tree.status_code == 200 and "adapter_config.json" in text_of(tree.text)
    assert ".eval_results" not in text_of(tree.text)  # committed after the tag
    assert ".eval_results" not in text_of(get(world, f"/{world.summarizer}/tree/v1.0").text)
    assert ".eval_results" in text_of(get(world, f"/{world.summarizer}/tree/main").text)
    assert get(world, f"/{world.summarizer}/tree/no-such-branch").status_code == 404
    dataset_then = get(world, f"/datasets/{world.dataset}/tree/{world.first_dataset_commit}")
    dataset_now = get(world, f"/datasets/{world.dataset}/tree/main")
    assert "eval.yaml" not in text_of(dataset_then.text) and "eval.yaml" in text_of(dataset_now.text)


def test_private_repo_pages_are_404_without_the_token(world):
    missing = get(world, "/org/no-such-repo")
    for path in ("", "/tree/main", "/commits/main", "/discussions", "/blob/main/README.md"):
        anonymous = get(world, f"/{world.secret}{path}")
        assert anonymous.status_code == 404 == missing.status_code and "Secret card" not in anonymous.text
    assert get(world, f"/{world.secret}", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    with httpx.Client(base_url=world.hub.endpoint) as browser:
        refused = browser.post("/login", data={"token": "wrong", "next": f"/{world.secret}"})
        assert refused.status_code == 401 and get(world, f"/{world.secret}").status_code == 404
        signed_in = browser.post("/login", data={"token": TOKEN, "next": f"/{world.secret}"}, follow_redirects=True)
        assert signed_in.status_code == 200 and "Secret card" in signed_in.text
        assert browser.post("/login", data={"token": TOKEN, "next": "//evil.example/"}).headers["location"] == "/"
        browser.get("/logout")
        assert browser.get(f"/{world.secret}").status_code == 404


def test_hostile_card_is_sanitized(world):
    page = get(world, f"/{world.hostile}")
    card = page.text[page.text.index('id="card"') : page.text.index("</article>")]
    assert "Hostile card" in card
    for forbidden in ("<script", "onerror", "onload", "onclick", "javascript:", "<iframe", "srcdoc"):
        assert forbidden not in card.lower(), forbidden


def test_dataset_viewer_shows_every_split_paged(world):
    for split, count in SPLIT_ROWS.items():
        page = get(world, f"/datasets/{world.dataset}/viewer", params={"config": "default", "split": split})
        assert page.status_code == 200
        assert page.text.count('class="viewer-row"') == min(count, 20) and f"{split}-000" in page.text
        assert f"of {count}" in page.text
    second = get(world, f"/datasets/{world.dataset}/viewer", params={"split": "train", "offset": 20})
    rows = re.findall(r"train-\d{3}", second.text)
    assert rows[0] == "train-020" and rows[-1] == "train-039" and 'id="viewer-next"' in second.text
    last = get(world, f"/datasets/{world.dataset}/viewer", params={"split": "train", "offset": 40})
    assert last.text.count('class="viewer-row"') == 5 and 'id="viewer-next"' not in last.text
    at_revision = get(world, f"/datasets/{world.dataset}/viewer", params={"revision": world.first_dataset_commit})
    assert at_revision.status_code == 200 and "train-000" in at_revision.text
    assert get(world, f"/datasets/{world.dataset}/viewer", params={"split": "nope"}).status_code == 404
    assert get(world, f"/datasets/{world.dataset}/viewer", params={"offset": -1}).status_code == 400


def test_leaderboard_page_matches_get_dataset_leaderboard(world):
    expected = world.api.get_dataset_leaderboard(world.dataset, base_model_only=False)
    page = get(world, f"/datasets/{world.dataset}/leaderboard")
    shown = re.findall(r'class="leaderboard-row" data-model="([^"]+)"', page.text)
    assert shown == [entry.model_id for entry in expected] and len(shown) == 4
    verified_rows = re.findall(r'data-model="([^"]+)">(?:(?!</tr>).)*✔ verified', page.text, re.S)
    assert verified_rows == [entry.model_id for entry in expected if entry.verified] == [world.others[1]]
    only_base = get(world, f"/datasets/{world.dataset}/leaderboard", params={"base_model": "true"})
    expected_base = world.api.get_dataset_leaderboard(world.dataset)
    assert re.findall(r'data-model="([^"]+)"', only_base.text) == [entry.model_id for entry in expected_base]
    assert get(world, f"/datasets/{world.dataset}-verifications/leaderboard").status_code == 404  # no eval.yaml


HOSTILE_PAGE_URLS = [
    "/{model}?revision=a%0D%0Ab",
    "/{model}?revision=%00",
    "/{model}?revision=",
    "/{model}/tree/%E6%AC%A0/sub",
    "/{model}/tree/main/%FF%FE",
    "/{model}/tree/main/..%2F..%2Fetc",
    "/{model}/tree/main/adapter_config.json",
    "/{model}/blob/main/",
    "/{model}/blob/main/%00",
    "/{model}/blob/main/.git/config",
    "/{model}/blob/refs%2Fpr%2F999/x",
    "/{model}/commits/a%0D%0AX-Injected:%201",
    "/{model}/commits/%00",
    "/datasets/{dataset}/viewer?offset=99999999",
    "/datasets/{dataset}/viewer?offset=abc",
    "/datasets/{dataset}/viewer?config=%00&split=%00",
    "/datasets/{dataset}/viewer?revision=nope",
    "/datasets/{dataset}/leaderboard?task_id=%00",
    "/datasets/{model}/leaderboard",
    "/{dataset}/viewer",
    "/models/x",
    "/api/x",
    "/datasets/x",
    "/a..b/c",
    "/x/y/z/w",
    "/-/static/..%2Fpages.py",
    "/-/static/%2e%2e/pages.py",
    "/login?next=%00",
    "/?search=%00%FF",
]


def test_hostile_page_urls_get_4xx_never_5xx(world):
    answers = {}
    for template in HOSTILE_PAGE_URLS:
        url = template.format(model=world.summarizer, dataset=world.dataset)
        answers[url] = get(world, url).status_code
    assert all(status < 500 for status in answers.values()), answers
    assert answers["/-/static/..%2Fpages.py"] == answers["/-/static/%2e%2e/pages.py"] == 404


def test_the_widget_says_when_no_inference_server_is_configured(hub, hub_api, repo_name):
    hub_api.create_repo(repo_name)
    page = httpx.get(f"{hub.endpoint}/{repo_name}")
    assert page.status_code == 200 and 'id="widget-unconfigured"' in page.text
    assert 'id="widget-run" disabled' in page.text


# ----- in headless Chromium ----------------------------------------------------------------------------------------
@pytest.fixture
def browser(tmp_path):
    with headless_chromium(tmp_path / "chromium-profile", window="1280,1500") as driver:
        yield driver


def screenshot(browser, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    assert browser.save_screenshot(str(path))
    print(f"screenshot: {path}")


def test_the_acceptance_pages_in_chromium(world, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 120)
    base = world.hub.endpoint

    browser.get(f"{base}/")
    listed = {link.text for link in browser.find_elements(By.CSS_SELECTOR, "a.repo-link")}
    assert {world.summarizer, world.base, world.dataset, world.hostile} <= listed and world.secret not in listed
    screenshot(browser, tmp_path, "home")

    browser.get(f"{base}/{world.summarizer}")
    assert "Summarizer adapter" in browser.find_element(By.ID, "card").text
    loss_curve = browser.find_element(By.CSS_SELECTOR, "#card img")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", loss_curve) == 40
    # Nothing in the sidebar is wider than the sidebar (long task ids and values wrap instead of overflowing).
    overflow = "const s = document.querySelector('aside.sidebar'); return s.scrollWidth - s.clientWidth"
    assert browser.execute_script(overflow) <= 0
    assert browser.find_elements(By.CSS_SELECTOR, "#eval-results .eval-row")
    browser.find_element(By.CSS_SELECTOR, ".widget-example").click()
    assert browser.find_element(By.ID, "widget-input").get_attribute("value").startswith("Customer:")
    browser.find_element(By.ID, "widget-run").click()
    widget = browser.find_element(By.ID, "inference-widget")
    wait.until(lambda _: widget.get_attribute("data-state"))
    status = browser.find_element(By.ID, "widget-status").text
    assert widget.get_attribute("data-state") == "done", status
    # The same answer the API gives for the same message and the card's parameters (greedy, 8 tokens).
    message = browser.find_element(By.ID, "widget-input").get_attribute("value")
    request = {"model": world.summarizer, "messages": [{"role": "user", "content": message}], "max_tokens": 8}
    response = httpx.post(f"{world.inference.url}/v1/chat/completions", json=request, timeout=120)
    answer = response.json()["choices"][0]["message"]["content"].strip()
    assert answer and browser.find_element(By.ID, "widget-output").text == answer
    screenshot(browser, tmp_path, "model")

    browser.get(f"{base}/{world.summarizer}/tree/main")
    assert browser.find_elements(By.CSS_SELECTOR, "#file-list .file-row")
    screenshot(browser, tmp_path, "files")
    browser.get(f"{base}/{world.summarizer}/commits/main")
    screenshot(browser, tmp_path, "commits")

    browser.get(f"{base}/datasets/{world.dataset}")
    screenshot(browser, tmp_path, "dataset")
    browser.get(f"{base}/datasets/{world.dataset}/viewer")
    splits = [link.get_attribute("data-split") for link in browser.find_elements(By.CSS_SELECTOR, ".split-link")]
    assert splits == list(SPLIT_ROWS)
    for split in splits:
        browser.find_element(By.CSS_SELECTOR, f".split-link[data-split='{split}']").click()
        wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "viewer-range"), f"/ {split}:"))
        rows = browser.find_elements(By.CSS_SELECTOR, "#viewer-table .viewer-row")
        assert len(rows) == min(SPLIT_ROWS[split], 20) and f"{split}-000" in rows[0].text
        screenshot(browser, tmp_path, f"viewer-{split}")

    browser.get(f"{base}/datasets/{world.dataset}/leaderboard")
    shown = [row.get_attribute("data-model") for row in browser.find_elements(By.CSS_SELECTOR, ".leaderboard-row")]
    ranked = world.api.get_dataset_leaderboard(world.dataset, base_model_only=False)
    assert shown == [entry.model_id for entry in ranked]
    verified = browser.find_elements(By.CSS_SELECTOR, ".leaderboard-row .verified")
    assert len(verified) == sum(entry.verified for entry in ranked) == 1
    screenshot(browser, tmp_path, "leaderboard")

    browser.get(f"{base}/{world.secret}")
    assert "404" in browser.find_element(By.TAG_NAME, "h1").text and "Secret card" not in browser.page_source
    screenshot(browser, tmp_path, "private-404")
    browser.get(f"{base}/login?next=/{world.secret}")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login-submit").click()
    wait.until(lambda _: "Secret card" in browser.page_source)
    screenshot(browser, tmp_path, "private-signed-in")

    browser.get(f"{base}/{world.hostile}")
    browser.find_element(By.LINK_TEXT, "click me").click()
    browser.find_element(By.XPATH, "//*[text()='styled']").click()
    assert browser.execute_script("return window.__pwned === undefined")
    assert not browser.find_elements(By.CSS_SELECTOR, "#card script, #card iframe, #card [onerror], #card [onload]")
    screenshot(browser, tmp_path, "hostile")
