"""Compares an answer the README shows with the one the product gave.

The README writes what varies from run to run as placeholders:
- `<…>` (angle brackets around a few words: `"<id>"`, `"<port>"`) or `…` stands for any text. A JSON
  string that is one placeholder and nothing else (`"<port>"`, `"…"`) stands for any value at all: a
  number, null, an object.
- In an object, the key `"…"` (with any value) stands for more keys: the keys shown must be there,
  others may be too. Without it, the keys must be exactly the ones shown.
- In a list, the item `"…"` stands for any number of items (none included).
JSON is compared as values, so spacing and key order do not matter. Anything else is compared as text,
placeholders included."""

from __future__ import annotations

import json
import re
from typing import Any

PLACEHOLDER = re.compile(r"<[^<>\"]*>|…")
MORE = "…"


def is_placeholder(text: str) -> bool:
    return PLACEHOLDER.fullmatch(text) is not None


def text_pattern(shown: str) -> re.Pattern[str]:
    parts = PLACEHOLDER.split(shown)
    return re.compile(".*?".join(re.escape(part) for part in parts), re.DOTALL)


def difference(shown: str, actual: str) -> str | None:
    """None when `actual` is what `shown` shows; otherwise what differs."""
    actual = actual.strip()
    try:
        expected = json.loads(shown)
    except ValueError:
        if text_pattern(shown.strip()).fullmatch(actual):
            return None
        return f"shown {shown.strip()!r}, got {actual!r}"
    try:
        given = json.loads(actual)
    except ValueError:
        return f"shown JSON {shown}, got what is not JSON: {actual[:2000]!r}"
    return value_difference(expected, given, "$")


def value_difference(expected: Any, given: Any, where: str) -> str | None:
    if isinstance(expected, str):
        if is_placeholder(expected):
            return None
        if isinstance(given, str) and (given == expected or (PLACEHOLDER.search(expected)
                                                             and text_pattern(expected).fullmatch(given))):
            return None
        return f"{where}: shown {json.dumps(expected)}, got {json.dumps(given)}"
    if isinstance(expected, dict):
        if not isinstance(given, dict):
            return f"{where}: shown an object, got {json.dumps(given)[:300]}"
        wanted = {key: value for key, value in expected.items() if key != MORE}
        missing = [key for key in wanted if key not in given]
        extra = [] if MORE in expected else [key for key in given if key not in wanted]
        if missing or extra:
            return f"{where}: keys missing {missing}, not shown {extra}, in {json.dumps(given)[:500]}"
        for key, value in wanted.items():
            if (found := value_difference(value, given[key], f"{where}.{key}")) is not None:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(given, list):
            return f"{where}: shown a list, got {json.dumps(given)[:300]}"
        if list_matches(expected, given, where):
            return None
        return f"{where}: shown {json.dumps(expected)[:500]}, got {json.dumps(given)[:1000]}"
    numbers = {type(expected), type(given)} <= {int, float}  # 1 and 1.0 are one JSON number; True and 1 are not
    if (type(expected) is not type(given) and not numbers) or expected != given:
        return f"{where}: shown {json.dumps(expected)}, got {json.dumps(given)}"
    return None


def list_matches(expected: list[Any], given: list[Any], where: str) -> bool:
    if not expected:
        return not given
    head, rest = expected[0], expected[1:]
    if head == MORE:
        return any(list_matches(rest, given[skip:], where) for skip in range(len(given) + 1))
    return bool(given) and value_difference(head, given[0], where) is None and list_matches(rest, given[1:], where)


def lines_difference(shown: list[str], actual: str) -> str | None:
    """A file's `# → ` answers against what running it printed, line by line."""
    printed = actual.strip().splitlines()
    if len(printed) != len(shown):
        return f"shown {len(shown)} lines {shown}, it printed {len(printed)}: {printed}"
    for number, (expected, given) in enumerate(zip(shown, printed, strict=True), 1):
        if (found := difference(expected, given)) is not None:
            return f"line {number}: {found}"
    return None
