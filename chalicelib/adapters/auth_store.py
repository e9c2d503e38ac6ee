"""AuthStore on DynamoDB: one item per piece of login state, each value sealed (never a file)."""

from __future__ import annotations

import json
from typing import Any

from ..ports import SecretBox
from .dynamo import Tables
from .outages import DYNAMODB, reaching


class DynamoAuthStore:
    def __init__(self, tables: Tables, box: SecretBox) -> None:
        self._model = tables.auth
        self._box = box

    @reaching(DYNAMODB)
    def load(self, instance_id: str) -> dict[str, Any]:
        return {item.item_key: json.loads(self._box.open(item.sealed))
                for item in self._model.query(instance_id, consistent_read=True)}

    @reaching(DYNAMODB)
    def put(self, instance_id: str, items: dict[str, Any]) -> None:
        with self._model.batch_write() as batch:
            for key, value in items.items():
                if value is None:
                    batch.delete(self._model(instance_id, key))
                else:
                    batch.save(self._model(instance_id, key, sealed=self._box.seal(json.dumps(value))))

    @reaching(DYNAMODB)
    def wipe(self, instance_id: str) -> None:
        keys = [item.item_key for item in self._model.query(instance_id, attributes_to_get=["item_key"])]
        with self._model.batch_write() as batch:
            for key in keys:
                batch.delete(self._model(instance_id, key))
