"""Container health check: the instance API answers GET /api/health on INSTANCE_PORT.

INSTANCE_PORT is set on the container by the launcher (chalicelib/adapters/ecs.py) to the port on
the instance's record, the one the runtime binds. Exit 0 when healthy, 1 otherwise."""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("INSTANCE_PORT", "")
    if not port.isdigit():
        print("unhealthy: INSTANCE_PORT is not set", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=3) as answer:
            return 0 if answer.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
