from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sdk.stacks import Stacks, running_stacks


@pytest.fixture(scope="session")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stacks]:
    with running_stacks(tmp_path_factory.mktemp("sdk")) as started:
        yield started
