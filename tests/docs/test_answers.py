"""How a shown answer is read: placeholders for what varies, "…" for more keys or items, JSON as values."""

from __future__ import annotations

from tests.docs.answers import difference, lines_difference


def test_json_is_compared_as_values() -> None:
    assert difference('{"success": true, "data": {"id": "1001:2"}}', '{"data":{"id":"1001:2"},"success":true}\n') is None
    assert difference('{"success":true}', '{"success":false}') is not None
    assert difference('{"n": 1}', '{"n": true}') is not None  # True is not 1 in JSON
    assert difference('{"n": 1}', '{"n": 1.0}') is None
    assert difference('{"a": 1}', "not json") is not None


def test_placeholders_stand_for_what_varies() -> None:
    assert difference('{"id": "<id>", "port": "<port>", "last_use": "<time, or null>"}',
                      '{"id": "ab-12", "port": 9850, "last_use": null}') is None
    assert difference('{"id": "1001:<message_id>"}', '{"id": "1001:17"}') is None
    assert difference('{"id": "1001:<message_id>"}', '{"id": "2002:17"}') is not None
    assert difference('{"secret": "whsec_<secret>"}', '{"secret": "whsec_abc"}') is None


def test_more_keys_and_items_only_where_shown() -> None:
    assert difference('{"a": 1}', '{"a": 1, "b": 2}') is not None
    assert difference('{"a": 1, "…": "…"}', '{"a": 1, "b": 2}') is None
    assert difference('{"a": 1, "…": "…"}', '{"b": 2}') is not None
    assert difference('["…", {"text": "hi", "…": "…"}]', '[{"text": "old"}, {"text": "hi", "id": 3}]') is None
    assert difference('["…", {"text": "hi"}]', "[]") is not None
    assert difference('["…"]', "[]") is None
    assert difference("[1, 2]", "[1, 2, 3]") is not None


def test_text_and_lines() -> None:
    assert difference("Instance created (telegram, port <port>)", "Instance created (telegram, port 9850)") is None
    assert difference("409 QR_NOT_AVAILABLE", "404 INSTANCE_NOT_FOUND") is not None
    assert lines_difference(["telegram", "409 QR_NOT_AVAILABLE"], "telegram\n409 QR_NOT_AVAILABLE\n") is None
    assert lines_difference(["telegram"], "telegram\nmore\n") is not None
