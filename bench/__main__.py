"""`python -m bench`: run the benchmarks, print their figures and rewrite docs/BENCHMARKS.md.

    python -m bench                      # everything
    python -m bench --only aws-calls     # one section (repeatable): aws-calls, import-time, stack, whatsapp, webhooks,
                                         # durability
    python -m bench --no-write           # print only
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback
from collections.abc import Callable

from . import aws_calls, durability, import_time, local_stack, report, webhooks, whatsapp
from .common import SectionResult, machine_text, now_text, say

SECTIONS = ("aws-calls", "import-time", "stack", "whatsapp", "webhooks", "durability")


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=SECTIONS,
                        help="run this section only (repeatable); default: all")
    parser.add_argument("--instances", type=int, default=10,
                        help="Telegram instances created on the local stack (default 10)")
    parser.add_argument("--port-offset", type=int, default=0,
                        help="shift the stacks' ports (3300, 4300, 4301, 9300-9399 for `stack`; 3800, 4800, 4801, "
                             "9800-9849 for `whatsapp` and `webhooks`) by this much, e.g. when a test run holds them")
    parser.add_argument("--import-runs", type=int, default=10, help="subprocesses per import measurement (default 10)")
    parser.add_argument("--kills", type=int, default=5, help="provider kills in the whatsapp section (default 5)")
    parser.add_argument("--messages", type=int, default=1000,
                        help="messages from the fake contact in the whatsapp section's memory figure (default 1000)")
    parser.add_argument("--events", type=int, default=500, help="events through the in-process fan-out (default 500)")
    parser.add_argument("--no-write", action="store_true", help="print the figures, leave docs/BENCHMARKS.md alone")
    args = parser.parse_args(args_list)

    chosen = [s for s in SECTIONS if not args.only or s in args.only]
    runners: dict[str, Callable[[], list[SectionResult]]] = {
        "aws-calls": lambda: [aws_calls.run()],
        "import-time": lambda: [import_time.run(args.import_runs)],
        "stack": lambda: local_stack.run(args.instances, args.port_offset),
        "whatsapp": lambda: whatsapp.run(args.port_offset, args.kills, args.messages),
        "webhooks": lambda: webhooks.run(args.port_offset, args.events),
        "durability": lambda: durability.run(),
    }
    stamp, machine = now_text(), machine_text()
    command = " ".join([".venv/bin/python -m bench", *map(shlex.quote, args_list)])
    say(f"{stamp}; {machine}")
    results: list[SectionResult] = []
    failed: list[str] = []
    started = time.monotonic()
    for name in chosen:
        section_started = time.monotonic()
        try:
            section_results = runners[name]()
        except Exception:
            failed.append(name)
            say(f"!! section {name} failed:\n{traceback.format_exc()}")
            continue
        took = time.monotonic() - section_started
        for result in section_results:
            result.markdown += f"\n\n(Section `{name}` took {took:.0f} s of wall time.)"
        results.extend(section_results)
        say(f"-- {name}: {took:.0f} s\n")
    say(f"Total: {time.monotonic() - started:.0f} s")
    for result in results:
        for problem in result.problems:
            say(f"PROBLEM in {result.key}: {problem}")
    measured = [r for r in results if not r.skipped]
    for result in results:
        if result.skipped:
            failed.append(result.key)
            say(f"Nothing measured for {result.key}: its block in docs/BENCHMARKS.md is left as it was")
    if not args.no_write and measured:
        path = report.write(measured, stamp, machine, command)
        say(f"Wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
