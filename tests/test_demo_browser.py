"""The demo Space in a real headless Chromium: click a validation example, Summarize, and see a summary appear.

Chromium and ChromeDriver come from Debian's `chromium` and `chromium-driver` packages, which `.ci/run` installs.
Outside CI the test skips (saying why) when they are absent; in CI a missing browser fails it.
"""

import contextlib
import time

import pytest

from dialoghub.demo.app import DemoConfig, build_demo, publish_space
from dialoghub.hub.client import free_loopback_port
from tests.browser import headless_chromium, require_browser
from tests.tiny_models import publish_tiny_base_and_adapter, tiny_tweetsumm


@contextlib.contextmanager
def demo_in_chromium(demo, profile_dir):
    """The Gradio `demo` served on a free loopback port, and headless Chromium on its page; both closed after."""
    require_browser()
    port = free_loopback_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with headless_chromium(profile_dir) as browser:
            browser.get(f"http://127.0.0.1:{port}/")
            yield browser
    finally:
        demo.close()


@pytest.fixture
def demo_repos(hub_api, repo_name, tmp_path):
    """A tiny base model, a summarizer adapter on it and a tiny dataset, published to the test Hub."""
    base_id, adapter_id, dataset_id = f"{repo_name}-base", f"{repo_name}-summarizer", f"{repo_name}-data"
    publish_tiny_base_and_adapter(hub_api, base_id, adapter_id, tmp_path)
    tiny_tweetsumm().push_to_hub(dataset_id)
    return DemoConfig(
        base_model=base_id,
        summarizer_adapter=adapter_id,
        generator_adapter=f"{repo_name}-missing-generator",
        dataset=dataset_id,
        results_repo=f"{repo_name}-no-results",
        max_new_tokens=16,
    )


def test_space_repo_is_published_with_its_card(hub_api, demo_repos, repo_name):
    from huggingface_hub import SpaceCard

    commit = publish_space(hub_api, f"{repo_name}-space", demo_repos, tag="v1")
    files = hub_api.list_repo_files(f"{repo_name}-space", repo_type="space")
    assert {
        "app.py",
        "README.md",
        "requirements.txt",
        "dialoghub/demo/app.py",
        "dialoghub/evaluation/leaderboard.py",
    } <= set(files)
    card = SpaceCard.load(f"{repo_name}-space", repo_type="space")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
    assert hub_api.space_info(f"{repo_name}-space", revision="v1").sha == commit
    assert publish_space(hub_api, f"{repo_name}-space", demo_repos) == commit  # unchanged: no new commit


def test_summarize_an_example_in_headless_chromium(demo_repos, tmp_path):
    require_browser()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    with demo_in_chromium(build_demo(demo_repos), tmp_path / "chromium-profile") as browser:
        wait = WebDriverWait(browser, 120)
        wait.until(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "#validation-examples button")))
        tabs = [tab.text for tab in browser.find_elements(By.CSS_SELECTOR, "button[role='tab']")]
        assert {"Summarize", "Generate", "Leaderboard"} <= set(tabs), tabs

        browser.find_elements(By.CSS_SELECTOR, "#validation-examples button")[0].click()
        dialogue = browser.find_element(By.CSS_SELECTOR, "#dialogue-input textarea")
        wait.until(lambda _: dialogue.get_attribute("value").startswith("Customer:"))
        browser.find_element(By.CSS_SELECTOR, "#summarize-button").click()
        summary = browser.find_element(By.CSS_SELECTOR, "#summary-output textarea")
        wait.until(lambda _: summary.get_attribute("value").strip())
        assert summary.get_attribute("value").strip()
        time.sleep(0.5)  # let the progress overlay fade before the screenshot
        assert browser.save_screenshot(str(tmp_path / "demo.png"))
        print(f"screenshot: {tmp_path / 'demo.png'}")
