"""Envelope encryption at rest: KMS-wrapped (moto) and file-wrapped data keys, and what DynamoDB holds."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.exceptions import InvalidTag

from chalicelib import wiring
from chalicelib.adapters.secrets import EnvelopeBox, FileKeyWrapper, KmsKeyWrapper
from tests.aws import moto_environment

SECRETS = ["123456789:AABBCCDDEEFFgghhiijjkkll", "Bearer your-token", "", "ünïcødé ✓ 秘密", "x" * 5000]


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, str]]:
    """The conftest's `aws`, deployed once for this module (a deployment costs about a second): each
    test here only adds things of its own."""
    for env in moto_environment():
        wiring.reset()
        yield env
    wiring.reset()


@pytest.fixture
def kms(aws: dict[str, str]) -> Any:
    return boto3.client("kms")


def count_calls(client: Any, operation: str) -> list[str]:
    """A list that grows by one on every `operation` call the client makes."""
    calls: list[str] = []
    client.meta.events.register(f"before-call.kms.{operation}", lambda **_: calls.append(operation))
    return calls


def envelope(sealed: str) -> dict[str, str]:
    assert sealed.startswith("v1:")
    return dict(json.loads(base64.b64decode(sealed[3:])))


def test_kms_box_round_trips_and_hides_the_plaintext(aws, kms):
    box = EnvelopeBox(KmsKeyWrapper(kms, aws["KMS_KEY_ID"]))
    for secret in SECRETS:
        sealed = box.seal(secret)
        assert box.open(sealed) == secret
        if secret:
            assert secret not in sealed
            assert secret.encode() not in base64.b64decode(envelope(sealed)["c"])
        assert box.seal(secret) != sealed, "a fresh nonce every time"


def test_kms_wraps_data_keys_under_the_deployed_key(aws, kms):
    wrapper = KmsKeyWrapper(kms, aws["KMS_KEY_ID"])
    key, wrapped = wrapper.new_data_key()
    assert len(key) == 32 and key not in wrapped
    # describe_key fails in moto on a key whose policy came from CloudFormation; the alias says it too.
    [key_id] = [a["TargetKeyId"] for a in kms.list_aliases()["Aliases"] if a["AliasName"] == aws["KMS_KEY_ID"]]
    assert key_id in kms.decrypt(CiphertextBlob=wrapped)["KeyId"]


def test_one_generate_data_key_call_serves_many_seals_and_opens(aws, kms):
    generated, decrypted = count_calls(kms, "GenerateDataKey"), count_calls(kms, "Decrypt")
    box = EnvelopeBox(KmsKeyWrapper(kms, aws["KMS_KEY_ID"]))

    sealed = [box.seal(f"secret-{i}") for i in range(20)]
    assert [box.open(s) for s in sealed] == [f"secret-{i}" for i in range(20)]
    assert (len(generated), len(decrypted)) == (1, 0)

    other_process = EnvelopeBox(KmsKeyWrapper(kms, aws["KMS_KEY_ID"]))
    assert [other_process.open(s) for s in sealed] == [f"secret-{i}" for i in range(20)]
    assert len(decrypted) == 1, "the unwrapped key is cached"


def test_data_keys_are_renewed_after_their_lifetime(aws, kms):
    now = [0.0]
    generated = count_calls(kms, "GenerateDataKey")
    box = EnvelopeBox(KmsKeyWrapper(kms, aws["KMS_KEY_ID"]), clock=lambda: now[0])
    early = box.seal("a")
    now[0] = 3600.0
    late = box.seal("b")
    assert len(generated) == 2
    assert envelope(early)["k"] != envelope(late)["k"]
    assert (box.open(early), box.open(late)) == ("a", "b")


def test_file_box_round_trips_and_a_second_box_opens_what_the_first_sealed(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "secrets.key"
    first = EnvelopeBox(FileKeyWrapper(str(key_file)))
    sealed = [first.seal(s) for s in SECRETS]

    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert len(key_file.read_bytes()) == 32
    for secret, value in zip(SECRETS, sealed, strict=True):
        assert first.open(value) == secret
        assert not secret or secret not in value
    second = EnvelopeBox(FileKeyWrapper(str(key_file)))
    assert [second.open(s) for s in sealed] == SECRETS


def test_a_different_key_file_cannot_open_it(tmp_path: Path) -> None:
    sealed = EnvelopeBox(FileKeyWrapper(str(tmp_path / "a.key"))).seal("secret")
    with pytest.raises(InvalidTag):
        EnvelopeBox(FileKeyWrapper(str(tmp_path / "b.key"))).open(sealed)


def test_not_a_sealed_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a sealed secret"):
        EnvelopeBox(FileKeyWrapper(str(tmp_path / "k"))).open("plain text")


def test_dynamodb_holds_no_secret_in_clear(aws):
    token, header = "123456789:AABBCCDDEEFFgghhiijjkkll", "Bearer hook-secret-value"
    created = wiring.container().instances.create({
        "company_id": "user-002", "provider": "telegram", "config": {"bot_token": token},
        "api_webhook_schema": {"url": "https://hooks.example.com/in", "headers": {"X-Hook-Auth": header}},
    })

    table = boto3.client("dynamodb")
    item = table.get_item(TableName=aws["INSTANCES_TABLE"], Key={"instance_id": {"S": created.id}})["Item"]
    raw = json.dumps(item)
    for secret in (created.api_key.value, token, header, "hook-secret-value", "AABBCCDDEEFF"):
        assert secret not in raw
    assert item["webhook_url"] == {"S": "https://hooks.example.com/in"}, "the URL is not a secret"
    stored = wiring.container().instances.get(created.id)
    assert stored.webhook is not None
    assert (stored.secrets, stored.webhook.headers) == ({"bot_token": token}, {"X-Hook-Auth": header})
    assert stored.api_key.value == created.api_key.value
