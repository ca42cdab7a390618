"""After `make pipeline`: the benchmark's Hub leaderboard, `leaderboard show` and the Space rank the adapters alike.

  python scripts/check_leaderboard.py [--config RECIPE.yaml] [--dataset ID] [--results_repo ID] [--browser true]

Reads the Hub under $DIALOGHUB_BASE_DIR (or the one running at HF_ENDPOINT) through the stock client:
`get_dataset_leaderboard(dataset, base_model_only=False)` must rank at least one model; `leaderboard show` must list
those models in the same order with the values the entries carry; with `--browser`, the Space's leaderboard tab in a
headless Chromium must too (it loads the demo's models, but generates nothing). Exit status 1 on any disagreement.
"""

import dialoghub.core.hubenv  # noqa: F401

import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field

from huggingface_hub import HfApi

from dialoghub.core.recipes import parse_recipe
from dialoghub.demo.app import DemoConfig, build_demo
from dialoghub.evaluation import benchmark
from dialoghub.evaluation.leaderboard import default_benchmark_dataset, render_leaderboard
from dialoghub.hub.client import free_loopback_port, hub_session


@dataclass
class CheckArguments:
    dataset: str | None = field(
        default=None, metadata={"help": "The benchmark dataset (none: <org>/tweetsumm-clean)."}
    )
    results_repo: str | None = field(default=None, metadata={"help": "Results repo (none: <org>/dialoghub-results)."})
    browser: bool = field(default=False, metadata={"help": "Also check the Space's tab in headless Chromium."})


def positions(text: str, model_ids: list[str]) -> list[int]:
    """Where each model's row starts in a rendered leaderboard, markdown or as a browser shows it (-1: missing); a
    row label is `ID@REV (sha)`."""
    found = []
    for model_id in model_ids:
        match = re.search(rf"(?<![\w./-]){re.escape(model_id)}[@ ]", text)  # not the tail of a longer id
        found.append(match.start() if match else -1)
    return found


def in_order(found: list[int]) -> bool:
    return -1 not in found and found == sorted(found)


def space_leaderboard_text(timeout: float = 300) -> str:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    demo = build_demo(DemoConfig.from_env())
    port = free_loopback_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1400"):
        options.add_argument(flag)
    profile = tempfile.TemporaryDirectory(prefix="check-leaderboard-")
    options.add_argument(f"--user-data-dir={profile.name}")
    browser = webdriver.Chrome(
        service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options
    )
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, timeout)

        def leaderboard_tab(_):
            tabs = browser.find_elements(By.CSS_SELECTOR, "button[role='tab']")
            return next((tab for tab in tabs if tab.text == "Leaderboard"), False)

        wait.until(leaderboard_tab).click()
        table = browser.find_element(By.CSS_SELECTOR, "#leaderboard-table")
        wait.until(lambda _: table.text.strip())
        return table.text
    finally:
        browser.quit()
        demo.close()
        profile.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_recipe(CheckArguments, argv, prog="scripts/check_leaderboard.py", description=__doc__)
    dataset = args.dataset or default_benchmark_dataset()
    problems = []
    with hub_session():
        board = HfApi().get_dataset_leaderboard(dataset, base_model_only=False)
        for entry in board:
            print(f"{entry.rank:>3}  {entry.model_id:<50} {entry.value:8.3f}  verified={entry.verified}  "
                  f"pr={entry.pull_request}")  # fmt: skip
        if not board:
            problems.append(f"get_dataset_leaderboard({dataset!r}, base_model_only=False) ranks nothing")
        model_ids = [entry.model_id for entry in board]
        markdown, chart = render_leaderboard(args.results_repo, dataset=dataset)
        if not in_order(positions(markdown, model_ids)):
            problems.append(f"leaderboard show does not rank {model_ids} in the Hub's order:\n{markdown}")
        for entry in board:
            record = benchmark.entry_record(entry)
            if benchmark.recorded_value(record, benchmark.task_metric(entry.taskId)[1]) != entry.value:
                problems.append(f"{entry.model_id}: the Hub's value {entry.value} is not its record's")
        print(f"\nleaderboard show: {'same order' if in_order(positions(markdown, model_ids)) else 'DIFFERENT'}")
        print(f"chart: {chart}")
        if args.browser:
            text = space_leaderboard_text()
            same = in_order(positions(text, model_ids))
            print(f"Space leaderboard tab: {'same order' if same else 'DIFFERENT'}")
            if not same:
                problems.append(f"the Space's leaderboard tab does not rank {model_ids} in the Hub's order:\n{text}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
