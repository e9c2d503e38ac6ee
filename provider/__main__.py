"""`python -m provider`: run one instance's provider. Settings come from the environment
(INSTANCE_ID, and the table, queue and log group names the manager uses)."""

from __future__ import annotations

import asyncio
import os
import sys

from chalicelib.config import Settings

from . import runtime
from .ecs_metadata import task_address
from .wiring import ProviderContainer


def main() -> int:
    instance_id = os.environ.get("INSTANCE_ID", "")
    if not instance_id:
        print("INSTANCE_ID is required", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    container = ProviderContainer(settings)
    return asyncio.run(
        runtime.run(
            instance_id,
            container,
            container.engine,
            bind_host=os.environ.get("INSTANCE_BIND_HOST", "0.0.0.0"),
            advertise_host=os.environ.get("INSTANCE_ADVERTISE_HOST") or task_address(),
        )
    )


if __name__ == "__main__":
    sys.exit(main())
