from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib import wiring
from tests.aws import moto_environment


@pytest.fixture
def aws() -> Iterator[dict[str, str]]:
    for env in moto_environment():
        wiring.reset()
        yield env
    wiring.reset()
