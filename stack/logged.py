"""`python -m stack.logged chalice local ...`: a Python console script run with the stack's logging
(stack/console.py configure_child_logging): each record with its level, libraries quiet unless
LOG_LEVEL=debug. `chalice local` itself would log every library's INFO record, level-less."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

from .console import configure_child_logging


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m stack.logged SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    (script,) = entry_points(group="console_scripts", name=argv[0])
    configure_child_logging()  # first: chalice local's basicConfig then finds the root configured
    sys.argv = argv
    code = script.load()()
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
