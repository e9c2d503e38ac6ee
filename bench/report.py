"""docs/BENCHMARKS.md: a fixed frame with one block per figure between markers. A run rewrites the
blocks it measured and keeps the others as they were, so one section can be rerun alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .common import ROOT, SectionResult

DOC = ROOT / "docs" / "BENCHMARKS.md"


@dataclass(frozen=True)
class Block:
    key: str
    heading: str
    section: str  # the --only value that produces it


BLOCKS = [
    Block("aws-calls", "1. AWS calls per request", "aws-calls"),
    Block("import-time", "2. Import time of app.py", "import-time"),
    Block("create-to-ready", "3. Create to client_ready (Telegram, local stack)", "stack"),
    Block("provider-rss", "4. Memory of a provider process (Telegram engine)", "stack"),
]

INTRO = """# Benchmarks

Figures measured on this project by `bench/` (standard library plus the repo's venv). The benchmarks print
figures; they assert nothing. Everything between the `bench:` markers below is written by the
benchmark itself: rerun it rather than editing by hand.

Commands (from the repository root):

```
.venv/bin/python -m bench                          # every section, rewrites this file (about 1-2 minutes)
.venv/bin/python -m bench --only aws-calls         # 1: AWS calls per request (in-process, moto)
.venv/bin/python -m bench --only import-time       # 2: import time of app.py next to a bare Chalice app
.venv/bin/python -m bench --only stack             # 3 and 4: local stack, create to client_ready, provider RSS
.venv/bin/python -m bench --no-write               # print only
.venv/bin/python -m bench --instances 20 --import-runs 20
.venv/bin/python -m bench --only stack --port-offset 50   # stack on 3350/4350/4351/9350-9449
```

Section 3/4 needs ports 3300, 4300, 4301 and 9300 upwards free (or shifted by `--port-offset`); if they
are taken it measures nothing and leaves its blocks below as they were. It starts the stack with
`python -m stack`, deletes what it created, stops the stack with SIGINT and reports anything left behind.

The machine is shared and noisy (2 cores): trust counts (section 1) and ratios within one run
(sections 2 and 4) more than absolute times, and compare times only within one block. Each block names
the date, machine and command that produced it.
"""


def _marker(key: str, end: bool) -> str:
    return f"<!-- bench:{key}:{'end' if end else 'begin'} -->"


def _existing_blocks(text: str) -> dict[str, str]:
    found = {}
    for block in BLOCKS:
        pattern = re.escape(_marker(block.key, False)) + r"\n(.*?)\n" + re.escape(_marker(block.key, True))
        match = re.search(pattern, text, re.S)
        if match:
            found[block.key] = match.group(1)
    return found


def write(results: list[SectionResult], stamp: str, machine: str, command: str, path: Path = DOC) -> Path:
    old = _existing_blocks(path.read_text()) if path.exists() else {}
    fresh = {
        r.key: f"_Measured {stamp} on {machine}, with `{command}`._\n\n{r.markdown}" for r in results
    }
    parts = [INTRO]
    for block in BLOCKS:
        body = fresh.get(block.key) or old.get(block.key) or (
            f"_Not measured yet: run `.venv/bin/python -m bench --only {block.section}`._"
        )
        parts.append(f"## {block.heading}\n\n{_marker(block.key, False)}\n{body}\n{_marker(block.key, True)}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path
