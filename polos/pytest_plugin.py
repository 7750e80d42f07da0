"""The pytest plugin of Polos (entry point `pytest11`, installed with the package): the
`polos_env` fixture, a started `polos.testing.Environment` for one test.

    async def test_review(polos_env: Environment) -> None:
        result = await parallel_review.run(polos_env.client, request)

    @pytest.mark.polos_env(workflows=[nightly], max_retries=0)
    async def test_nightly(polos_env: Environment) -> None:
        await polos_env.advance(days=1)

The fixture is async: it needs pytest-asyncio (with `asyncio_mode = "auto"`, or tests marked
`@pytest.mark.asyncio`). Without it, a test that asks for `polos_env` fails with a message that
says so. This module imports nothing of Polos until a test asks for the fixture, so it costs
nothing to test runs that do not use it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from polos.testing import Environment

_NEEDS_ASYNCIO = (
    "the polos_env fixture is async and needs the pytest-asyncio plugin "
    '(pip install pytest-asyncio; then set asyncio_mode = "auto" or mark the test with '
    "@pytest.mark.asyncio)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "polos_env(**options): keyword arguments of the polos.testing.Environment that the "
        "polos_env fixture starts (workflows=[...], max_retries=..., ...)",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The keyword arguments of the closest `polos_env` marker (the test's, else its class's
    or module's)."""
    marker = request.node.get_closest_marker("polos_env")
    if marker is None:
        return {}
    if marker.args:
        pytest.fail("@pytest.mark.polos_env takes keyword arguments only", pytrace=False)
    return dict(marker.kwargs)


async def _environment(request: pytest.FixtureRequest) -> AsyncIterator[Environment]:
    from polos.testing import Environment

    async with Environment(**_options(request)) as env:
        yield env


def _missing_asyncio() -> None:
    pytest.fail(_NEEDS_ASYNCIO, pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # pytest-asyncio installed but disabled (-p no:asyncio): say why before pytest refuses
    # the async fixture in its own words.
    fixtures = getattr(item, "fixturenames", ())
    if "polos_env" in fixtures and not item.config.pluginmanager.hasplugin("asyncio"):
        pytest.fail(_NEEDS_ASYNCIO, pytrace=False)


polos_env: Any
try:
    import pytest_asyncio
except ImportError:  # the fixture exists, to say what is missing
    polos_env = pytest.fixture(name="polos_env")(_missing_asyncio)
else:
    polos_env = pytest_asyncio.fixture(name="polos_env")(_environment)
