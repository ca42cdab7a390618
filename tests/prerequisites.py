"""Tests that need something outside the Python environment (a browser, a model wheel) skip without it on a
developer's machine, and fail in CI (`CI` set), which must run every test."""

import os
from typing import NoReturn

import pytest


def missing(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test, but {message}")
    pytest.skip(message)
