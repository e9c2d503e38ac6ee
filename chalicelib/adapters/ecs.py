"""Launcher on ECS Fargate: one task per instance, from the provider's task definition."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..core.types import Instance
from ..ports import TaskInfo, TaskState
from .outages import ECS, reaching

_PENDING = {"PROVISIONING", "PENDING", "ACTIVATING"}
_RUNNING = {"RUNNING"}


class EcsLauncher:
    backend = ECS

    def __init__(self, ecs_client: Any, settings: Settings) -> None:
        self._ecs = ecs_client
        self._s = settings

    @reaching(ECS)
    def launch(self, instance: Instance) -> str:
        """Idempotent: an instance's task already running (startedBy its id) is returned, not doubled."""
        running = self._ecs.list_tasks(cluster=self._s.ecs_cluster, startedBy=instance.id[:36], desiredStatus="RUNNING")
        if running.get("taskArns"):
            return str(running["taskArns"][0])
        definitions = dict(self._s.ecs_task_definitions)
        answer = self._ecs.run_task(
            cluster=self._s.ecs_cluster,
            taskDefinition=definitions[instance.provider.value],
            launchType="FARGATE",
            count=1,
            startedBy=instance.id[:36],
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": list(self._s.ecs_subnets),
                    "securityGroups": list(self._s.ecs_security_groups),
                    "assignPublicIp": "DISABLED",
                }
            },
            overrides={
                "containerOverrides": [
                    {
                        "name": self._s.ecs_container_name,
                        "environment": [
                            {"name": "INSTANCE_ID", "value": instance.id},
                            {"name": "PROVIDER", "value": instance.provider.value},
                            {"name": "INSTANCE_PORT", "value": str(instance.ports["api"])},
                        ],
                    }
                ]
            },
            tags=[
                {"key": "instance-id", "value": instance.id},
                {"key": "company-id", "value": instance.company_id},
            ],
            propagateTags="TASK_DEFINITION",
        )
        if answer.get("failures") or not answer.get("tasks"):
            reasons = "; ".join(f.get("reason", "unknown") for f in answer.get("failures", []))
            raise RuntimeError(f"ECS could not run the task: {reasons or 'no task returned'}")
        return str(answer["tasks"][0]["taskArn"])

    @reaching(ECS)
    def stop(self, handle: str) -> None:
        try:
            self._ecs.stop_task(cluster=self._s.ecs_cluster, task=handle, reason="Stopped by Instance Manager")
        except Exception as exc:  # an unknown or already-gone task is already stopped
            message = str(exc).lower()
            if "not found" not in message and "could not find" not in message and "invalidparameter" not in message:
                raise

    @reaching(ECS)
    def describe(self, handle: str) -> TaskInfo:
        answer = self._ecs.describe_tasks(cluster=self._s.ecs_cluster, tasks=[handle])
        if not answer.get("tasks"):
            return TaskInfo(handle, TaskState.STOPPED, "task not found")
        task = answer["tasks"][0]
        status = task.get("lastStatus", "")
        desired = task.get("desiredStatus", "")
        if desired == "STOPPED" and status not in _RUNNING | _PENDING:
            return TaskInfo(handle, TaskState.STOPPED, task.get("stoppedReason", status))
        if status in _RUNNING and task.get("healthStatus") == "UNHEALTHY":
            # ECS replaces unhealthy tasks only in services; for RunTask tasks that is up to us.
            return TaskInfo(handle, TaskState.STOPPED, "running but unhealthy (its health check fails)")
        if status in _RUNNING:
            return TaskInfo(handle, TaskState.RUNNING, status)
        if status in _PENDING:
            return TaskInfo(handle, TaskState.PENDING, status)
        return TaskInfo(handle, TaskState.STOPPED, task.get("stoppedReason", status))

    @reaching(ECS)
    def probe(self) -> None:
        # ListTasks, not DescribeClusters: the API's role may call it; an unknown cluster raises.
        self._ecs.list_tasks(cluster=self._s.ecs_cluster, maxResults=1)
