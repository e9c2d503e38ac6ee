"""The stack's moto keeps every write it answered through a SIGKILL (stack/moto_state.py and
stack/moto_server.py), in a real moto server in a subprocess (moto's state is per process), on
port 3890."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ROOT, port_open, wait_for

PORT = 3890
# One moto process: restore what DATA_DIR holds, then either write (and wait to be killed, with no
# periodic snapshot: only what the durable writes put on disk can survive) or read everything back.
MOTO = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    data_dir, port, durable, phase = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "durable", sys.argv[4]
    os.environ.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    import boto3
    from stack import moto_state, resources
    from stack.moto_server import MotoServer
    keeper = moto_state.StateKeeper(data_dir, "us-east-1", durable, interval=3600)
    moto = MotoServer(port, keeper)
    session = boto3.session.Session(region_name="us-east-1")
    outputs = resources.deploy(session.client("cloudformation"))
    keeper.restore(moto.app.replay)
    ddb, logs, sqs = (session.client(name) for name in ("dynamodb", "logs", "sqs"))
    queue = sqs.get_queue_url(QueueName=outputs["EventsQueueName"])["QueueUrl"]
    group = outputs["LogGroupName"]
    if phase == "write":
        ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        ddb.put_item(TableName="t", Item={"id": {"S": "a"}, "n": {"N": "0"}})
        ddb.put_item(TableName="t", Item={"id": {"S": "gone"}})
        add = dict(TableName="t", Key={"id": {"S": "a"}}, UpdateExpression="ADD n :one",
                   ExpressionAttributeValues={":one": {"N": "1"}})
        ddb.update_item(**add)
        keeper.snapshot()  # a compaction between the writes: nothing may be applied twice
        ddb.update_item(**add)
        ddb.update_item(**add)
        try:
            ddb.put_item(TableName="t", Item={"id": {"S": "a"}}, ConditionExpression="attribute_not_exists(id)")
        except ddb.exceptions.ConditionalCheckFailedException:
            pass
        ddb.delete_item(TableName="t", Key={"id": {"S": "gone"}})
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        logs.put_log_events(logGroupName=group, logStreamName="s",
                            logEvents=[{"timestamp": int(time.time() * 1000) + i, "message": f"line {i}"} for i in range(3)])
        for i in range(3):
            sqs.send_message(QueueUrl=queue, MessageBody=f"event {i}", MessageGroupId="g", MessageDeduplicationId=str(i))
        taken = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"][0]
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=taken["ReceiptHandle"])
        print("written", flush=True)
        time.sleep(60)
    else:
        tables = ddb.list_tables()["TableNames"]
        items = ddb.scan(TableName="t")["Items"] if "t" in tables else []
        try:
            lines = [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName="s")["events"]]
        except logs.exceptions.ResourceNotFoundException:
            lines = []
        bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                          VisibilityTimeout=0).get("Messages", [])]
        print(json.dumps({"items": items, "lines": lines, "bodies": bodies, "replayed": keeper.replayed,
                          "failures": keeper.replay_failures}), flush=True)
        keeper.stop()
        moto.stop()
""")


def moto(data_dir: Path, mode: str, phase: str) -> subprocess.Popen[str]:
    wait_for(lambda: not port_open(PORT), 10, f"port {PORT} to be free")
    return subprocess.Popen([sys.executable, "-c", MOTO, str(data_dir), str(PORT), mode, phase], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def write_then_kill(data_dir: Path, mode: str) -> None:
    process = moto(data_dir, mode, "write")
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "written"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(5)
    finally:
        process.kill()
        process.wait()


def read_back(data_dir: Path, mode: str) -> dict[str, Any]:
    process = moto(data_dir, mode, "read")
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.timeout(120)
def test_every_answered_write_survives_a_sigkill(tmp_path: Path) -> None:
    write_then_kill(tmp_path, "durable")
    back = read_back(tmp_path, "durable")
    assert back["items"] == [{"id": {"S": "a"}, "n": {"N": "3"}}]  # three ADDs, each once; the delete held
    assert back["lines"] == ["line 0", "line 1", "line 2"]
    assert sorted(back["bodies"]) == ["event 1", "event 2"]  # the deleted one stays deleted
    assert back["failures"] == 0 and back["replayed"] > 0
    files = list(tmp_path.iterdir())
    assert all(p.name in ("moto-state.pickle", "moto-sqs.pickle") or p.name.startswith("moto-journal.") for p in files)
    assert all(p.stat().st_mode & 0o077 == 0 for p in files)


@pytest.mark.timeout(120)
def test_without_durable_writes_a_kill_loses_what_came_after_the_last_snapshot(tmp_path: Path) -> None:
    write_then_kill(tmp_path, "not-durable")
    back = read_back(tmp_path, "not-durable")
    # the one snapshot in the run, taken between the writes, is all that is left
    assert sorted(back["items"], key=lambda item: item["id"]["S"]) == [{"id": {"S": "a"}, "n": {"N": "1"}},
                                                                        {"id": {"S": "gone"}}]
    assert back["lines"] == [] and back["bodies"] == [] and back["replayed"] == 0
