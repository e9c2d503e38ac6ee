from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.templates import chalice_executable, chalice_package


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    """The merged template `chalice package --merge-template` writes (what scripts/deploy.sh deploys)."""
    if chalice_executable() is None:
        pytest.skip("chalice is not installed")
    path = chalice_package(tmp_path_factory.mktemp("chalice-package"))
    return path, json.loads(path.read_text())
