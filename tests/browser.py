"""Headless Chromium for the browser tests: Debian's `chromium` and `chromium-driver` (which `.ci/run` installs), with
the flags that keep it off the network. Outside CI a test skips (saying why) when they are absent; in CI it fails."""

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from tests import prerequisites

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)  # fmt: skip


def require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if missing:
        prerequisites.missing(f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)")


@contextlib.contextmanager
def headless_chromium(profile_dir: Path, window: str = "1280,1400") -> Iterator:
    """A selenium driver of headless Chromium with its own profile folder, quit however the block ends."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--window-size={window}", f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
