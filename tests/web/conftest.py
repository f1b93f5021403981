"""Fixtures of the web tests that need real outside parts: one JupyterHub course for the whole session."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from autograder.hub import harness
from hubcourse import HubCourse, start_hub_course


@pytest.fixture(scope="session")
def hc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubCourse]:
    """The course as the service of a real Hub (:mod:`hubcourse`); skipped only if the Hub's parts are missing."""
    why = harness.missing_parts()
    if why:
        pytest.skip(why)
    yield from start_hub_course(tmp_path_factory.mktemp("hubcourse"))
