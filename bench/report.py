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
    Block("whatsapp-rss", "5. Memory of a WhatsApp provider (Python runtime + Node bridge)", "whatsapp"),
    Block("whatsapp-reconnect", "6. Reconnect after a killed WhatsApp provider (local stack)", "whatsapp"),
    Block("whatsapp-latency", "7. Message to webhook (WhatsApp, local stack)", "whatsapp"),
    Block("webhook-fanout", "8. Webhook fan-out throughput and AWS calls per event (in-process, moto)", "webhooks"),
    Block("webhook-latency", "9. Event to webhook delivery (Telegram, local stack)", "webhooks"),
    Block("durability", "10. Durable writes on the local stack (LOCAL_DURABLE_WRITES)", "durability"),
]

INTRO = """# Benchmarks

Figures measured on this project by `bench/` (standard library plus the repo's venv). The benchmarks print
figures; they assert nothing. Everything between the `bench:` markers below is written by the
benchmark itself: rerun it rather than editing by hand.

Commands (from the repository root):

```
.venv/bin/python -m bench                          # every section, rewrites this file (about 5 minutes)
.venv/bin/python -m bench --only aws-calls         # 1: AWS calls per request (in-process, moto)
.venv/bin/python -m bench --only import-time       # 2: import time of app.py next to a bare Chalice app
.venv/bin/python -m bench --only stack             # 3 and 4: local stack, create to client_ready, provider RSS
.venv/bin/python -m bench --only whatsapp          # 5, 6 and 7: WhatsApp on the local stack (about 2 minutes)
.venv/bin/python -m bench --only webhooks          # 8 and 9: fan-out throughput (in-process), delivery latency
.venv/bin/python -m bench --only durability        # 10: what durable writes cost the local stack (about 2 minutes)
.venv/bin/python -m bench --no-write               # print only
.venv/bin/python -m bench --instances 20 --import-runs 20 --kills 7 --messages 1000 --events 500
.venv/bin/python -m bench --only stack --port-offset 50   # every stack's ports shifted by 50
```

Section `stack` needs ports 3300, 4300, 4301 and 9300 upwards free; sections `whatsapp` and `webhooks` need
3800, 4800, 4801 and 9800 upwards (all shifted by `--port-offset`); section `durability` needs 3860, 3870, 4860,
4861, 4870, 4871 and 9700-9749 (not shifted). A section whose ports stay taken for
two minutes measures nothing and leaves its blocks below as they were. Each starts the stack with
`python -m stack` (`whatsapp` and `webhooks` through `python -m bench.stack_probe`, the same stack plus a
count of the AWS requests its moto server answers), deletes or abandons what it created, stops the stack
with SIGINT and reports anything left behind. `whatsapp` also needs Node 20 and `make install`'s
`node_modules` (the fake WhatsApp server and the engine's bridge).

The machine is shared and noisy (2 cores, other test suites running): trust counts (sections 1, 8 and
the request tables of 5 and 9), CPU time per message (5, 9) and ratios within one run (2, 4, 8) more
than absolute times, and compare times only within one block. Each block names the date, machine and
command that produced it.
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
