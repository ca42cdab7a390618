"""The demo Space in a real headless Chromium: click a validation example, Summarize, and see a summary appear.

Chromium and ChromeDriver come from Debian's `chromium` and `chromium-driver` packages, which `.ci/run` installs.
Outside CI the test skips (saying why) when they are absent; in CI a missing browser fails it.
"""

import contextlib
import os
import shutil
import time

import pytest
import torch

from dialoghub.demo.app import DemoConfig, build_demo, publish_space
from dialoghub.hub.client.embedded import free_loopback_port
from tests import prerequisites
from tests.tiny_models import save_tiny_base, tiny_tweetsumm

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1280,1400",
)  # fmt: skip


def require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if not missing:
        return
    prerequisites.missing(f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)")


@contextlib.contextmanager
def demo_in_chromium(demo, profile_dir):
    """The Gradio `demo` served on a free loopback port, and headless Chromium on its page; both closed after."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    port = free_loopback_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        yield browser
    finally:
        browser.quit()
        demo.close()


@pytest.fixture
def demo_repos(hub_api, repo_name, tmp_path):
    """A tiny base model, a summarizer adapter on it and a tiny dataset, published to the test Hub."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base_id, adapter_id, dataset_id = f"{repo_name}-base", f"{repo_name}-summarizer", f"{repo_name}-data"
    base_dir = save_tiny_base(tmp_path / "base")
    hub_api.create_repo(base_id)
    hub_api.upload_folder(folder_path=base_dir, repo_id=base_id)
    torch.manual_seed(0)
    adapter = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(r=4, target_modules=["q_proj"])
    )
    adapter.peft_config["default"].base_model_name_or_path = base_id
    adapter.save_pretrained(tmp_path / "adapter")
    hub_api.create_repo(adapter_id)
    hub_api.upload_folder(folder_path=tmp_path / "adapter", repo_id=adapter_id)
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
