"""One Telegram bot token, one instance. Telegram lets one client at a time poll a bot's updates, so two
instances on one token would take the polls from each other forever.

Create claims the token in its own transaction: an item `bot-token#<digest>` in the leases table, put
on condition that it does not exist, holding the id of the instance that holds it; delete releases it
in its transaction. The digest is HMAC-SHA256 of the token under a digest key of this deployment, so
what is stored tells nothing about the token, not even to someone holding a list of leaked tokens:
the key is 32 random bytes made on first use and kept in the leases table sealed by the secret box
(KMS, or the local key file), item `digest-key#bot-token`, and cached by each process: deleting that
item would make new processes digest differently from the claims stored. The token itself stays in the
instance's sealed config only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from ..core.errors import ErrorCode, InstanceManagerError
from ..core.types import Instance
from ..ports import SecretBox

DIGEST_KEY_ID = "digest-key#bot-token"
CLAIM_PREFIX = "bot-token#"


class BotTokenClaims:
    def __init__(self, leases: type[Any], box: SecretBox) -> None:
        self._leases = leases
        self._box = box
        self._lock = threading.Lock()
        self._key: bytes | None = None

    def claim(self, tx: Any, instance: Instance) -> bool:
        """Adds the claim of the instance's token to the create transaction; False when it has none."""
        claim_id = self._claim_id(instance)
        if claim_id is None:
            return False
        L = self._leases
        tx.save(L(claim_id, owner=instance.id), condition=L.lease_id.does_not_exist())
        return True

    def release(self, tx: Any, instance: Instance) -> None:
        """Adds the release of the instance's claim to the delete transaction. Only the holder's own
        claim: an instance made before claims existed may share its token with one that holds it."""
        claim_id = self._claim_id(instance)
        if claim_id is None:
            return
        L = self._leases
        try:
            held = L.get(claim_id, consistent_read=True)
        except DoesNotExist:
            return
        if held.owner == instance.id:
            tx.delete(L(claim_id), condition=L.owner == instance.id)

    def in_use(self, instance: Instance) -> InstanceManagerError:
        claim_id = self._claim_id(instance)
        holder = None
        if claim_id is not None:
            try:
                holder = self._leases.get(claim_id, consistent_read=True).owner
            except DoesNotExist:
                pass  # released meanwhile: the next create can have it
        by = f" by instance {holder}" if holder else " by another instance"
        return InstanceManagerError(
            ErrorCode.BOT_TOKEN_IN_USE,
            f"This bot token is already used{by}: Telegram lets one client at a time receive a bot's updates, "
            "so one token drives one instance. Delete that instance first, or create another bot with @BotFather",
        )

    def digest(self, token: str) -> str:
        return hmac.new(self._digest_key(), token.encode(), hashlib.sha256).hexdigest()

    def _claim_id(self, instance: Instance) -> str | None:
        token = instance.secrets.get("bot_token")
        return CLAIM_PREFIX + self.digest(token) if token else None

    def _digest_key(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = self._load_or_create_key()
            return self._key

    def _load_or_create_key(self) -> bytes:
        L = self._leases
        try:
            return self._open(L.get(DIGEST_KEY_ID, consistent_read=True))
        except DoesNotExist:
            pass
        key = secrets.token_bytes(32)
        try:
            L(DIGEST_KEY_ID, sealed=self._box.seal(base64.b64encode(key).decode())).save(
                condition=L.lease_id.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return self._open(L.get(DIGEST_KEY_ID, consistent_read=True))  # another process made it first
        return key

    def _open(self, item: Any) -> bytes:
        return base64.b64decode(self._box.open(item.sealed))
