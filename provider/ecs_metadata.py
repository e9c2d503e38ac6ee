"""On Fargate, the task's own private address comes from the ECS task metadata endpoint."""

from __future__ import annotations

import json
import os
import urllib.request


def task_address(timeout: float = 2.0) -> str | None:
    base = os.environ.get("ECS_CONTAINER_METADATA_URI_V4")
    if not base:
        return None
    try:
        with urllib.request.urlopen(f"{base}/task", timeout=timeout) as answer:
            task = json.loads(answer.read())
        for container in task.get("Containers", []):
            for network in container.get("Networks", []):
                for address in network.get("IPv4Addresses", []):
                    return str(address)
    except (OSError, ValueError):
        return None
    return None
