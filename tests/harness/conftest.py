"""Fixtures of the test-harness tests (polos.testing.Environment, in this process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import apps


@pytest.fixture(autouse=True)
def _fresh_log() -> Iterator[None]:
    apps.LOG.clear()
    apps.ATTEMPTS.clear()
    yield
    apps.LOG.clear()
    apps.ATTEMPTS.clear()
