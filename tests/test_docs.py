"""The README's tables stay true to the code: every error code and every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

from chalicelib.core.errors import HTTP_STATUS, ErrorCode

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# Set by the launcher or the local stack for their own children; not settings a person chooses.
INTERNAL = {"EXIT_WITH_PARENT", "PYTHONUNBUFFERED", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "CI",
            "ECS_CONTAINER_METADATA_URI_V4"}


def table_rows(heading: str) -> list[list[str]]:
    section = README.split(heading, 1)[1].split("\n## ", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| `")]


def test_every_error_code_is_in_the_readme_with_its_status() -> None:
    documented = {row[0].strip("`"): int(row[1]) for row in table_rows("### Errors")}
    assert documented == {code.value: status for code, status in HTTP_STATUS.items()}
    assert set(HTTP_STATUS) == set(ErrorCode)


def test_every_setting_the_code_reads_is_in_the_configuration_table() -> None:
    documented = {row[0].strip("`") for row in table_rows("## Configuration")}
    read = set()
    for path in [*ROOT.glob("chalicelib/**/*.py"), *ROOT.glob("provider/**/*.py"), *ROOT.glob("stack/*.py")]:
        read |= set(re.findall(r"""(?:environ\.get|env\.get|get|csv)\(\s*["']([A-Z][A-Z0-9_]+)["']""", path.read_text()))
    missing = read - documented - INTERNAL
    assert not missing, f"settings missing from the README's configuration table: {sorted(missing)}"
    assert {"ADMIN_API_KEY", "PORT", "DATA_DIR", "TELEGRAM_API_ROOT"} <= documented
