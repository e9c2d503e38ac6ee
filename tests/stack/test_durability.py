"""The journal and the file replacement under the local stack's durable writes (stack/durability.py)."""

from __future__ import annotations

import stat
from pathlib import Path

from stack.durability import Journal, journal_generations, journal_path, read_journal, replace_file


def test_records_come_back_in_order_and_rotation_starts_a_new_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "j", 3)
    tickets = [journal.append({"n": n, "body": bytes([n]) * n}) for n in range(5)]
    journal.sync(tickets[2])
    journal.sync(tickets[-1])
    assert journal.rotate() == 3 and journal.generation == 4 and journal.records == 0
    journal.sync(journal.append({"n": 99}))
    journal.close()
    assert journal_generations(tmp_path, "j") == [3, 4]
    assert [r["n"] for r in read_journal(journal_path(tmp_path, "j", 3))] == [0, 1, 2, 3, 4]
    assert list(read_journal(journal_path(tmp_path, "j", 4))) == [{"n": 99}]
    assert stat.S_IMODE(journal_path(tmp_path, "j", 3).stat().st_mode) == 0o600


def test_a_record_cut_short_or_damaged_ends_the_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "j", 0)
    for n in range(3):
        journal.append({"n": n})
    journal.close()
    path = journal_path(tmp_path, "j", 0)
    whole = path.read_bytes()
    path.write_bytes(whole[:-3])  # the crash came while the last record was being written
    assert [r["n"] for r in read_journal(path)] == [0, 1]
    damaged = bytearray(whole)
    damaged[len(whole) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    assert [r["n"] for r in read_journal(path)] == [0]
    assert list(read_journal(tmp_path / "absent")) == []


def test_a_replaced_file_is_whole_and_private(tmp_path: Path) -> None:
    path = tmp_path / "state"
    replace_file(path, b"one")
    replace_file(path, b"two" * 1000)
    assert path.read_bytes() == b"two" * 1000 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]
