"""InstanceRepository on DynamoDB through PynamoDB.

Tables: instances (one item per instance; GSIs by company and over all instances, so nothing
scans) and leases (one counter item per company, one item holding the set of ports in use, one
claim per Telegram bot token in use: see bot_tokens.py). Create and delete change them all in one
transaction: the company limit, port uniqueness and one token per instance hold under concurrent calls.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    NumberSetAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from ..config import Settings
from ..core.errors import ErrorCode, InstanceManagerError, not_found
from ..core.events import DEFAULT_EVENTS
from ..core.types import (
    ApiKey,
    AuthStatus,
    DesiredState,
    Instance,
    Provider,
    SigningSecrets,
    Status,
    WebhookConfig,
    utc_now,
)
from ..ports import SecretBox
from .bot_tokens import BotTokenClaims
from .outages import DYNAMODB, reaching, unreachable_reason

RECORD_TYPE = "instance"
PORTS_KEY = "ports"
_MAX_TRANSACTION_TRIES = 8


@dataclass(frozen=True)
class Tables:
    instances: type[Any]
    leases: type[Any]
    auth: type[Any]
    deliveries: type[Any]


def define_tables(settings: Settings) -> Tables:
    """Model classes bound to this deployment's table names (PynamoDB reads Meta at class creation;
    it follows AWS_ENDPOINT_URL, which is how the local stack points it at moto)."""

    class Shared:  # what every table's Meta holds; PynamoDB builds the model's connection from it
        region = settings.region
        connect_timeout_seconds = settings.aws_connect_timeout_seconds
        read_timeout_seconds = settings.aws_read_timeout_seconds
        max_retry_attempts = settings.aws_max_attempts - 1  # PynamoDB counts retries, not attempts

    class ByCompany(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "by_company"
            projection = AllProjection()

        company_id = UnicodeAttribute(hash_key=True)
        created_at = UTCDateTimeAttribute(range_key=True)

    class ByRecordType(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "by_record_type"
            projection = AllProjection()

        record_type = UnicodeAttribute(hash_key=True)
        created_at = UTCDateTimeAttribute(range_key=True)

    class ByState(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "by_state"
            projection = AllProjection()

        instance_state = UnicodeAttribute(hash_key=True)
        delivery_id = UnicodeAttribute(range_key=True)

    class InstanceItem(Model):
        class Meta(Shared):
            table_name = settings.instances_table

        instance_id = UnicodeAttribute(hash_key=True)
        record_type = UnicodeAttribute(default=RECORD_TYPE)
        company_id = UnicodeAttribute()
        provider = UnicodeAttribute()
        type_instance = ListAttribute(of=UnicodeAttribute)
        ports_json = UnicodeAttribute()
        desired_state = UnicodeAttribute()
        status = UnicodeAttribute()
        auth_status = UnicodeAttribute()
        account = UnicodeAttribute(null=True)
        host = UnicodeAttribute(null=True)
        task_handle = UnicodeAttribute(null=True)
        webhook_url = UnicodeAttribute(null=True)
        webhook_enabled = BooleanAttribute(null=True)
        webhook_headers_sealed = UnicodeAttribute(null=True)
        webhook_header_names = ListAttribute(of=UnicodeAttribute, null=True)
        webhook_events = ListAttribute(of=UnicodeAttribute, null=True)
        signing_sealed = UnicodeAttribute(null=True)
        secrets_sealed = UnicodeAttribute(null=True)
        api_key_sealed = UnicodeAttribute()
        key_generated_at = UTCDateTimeAttribute()
        key_last_use = UTCDateTimeAttribute(null=True)
        key_usage_count = NumberAttribute(default=0)
        log_lines = NumberAttribute(default=0)
        qr = UnicodeAttribute(null=True)
        qr_updated_at = UTCDateTimeAttribute(null=True)
        created_at = UTCDateTimeAttribute()
        updated_at = UTCDateTimeAttribute()
        by_company = ByCompany()
        by_record_type = ByRecordType()

    class LeaseItem(Model):
        class Meta(Shared):
            table_name = settings.leases_table

        lease_id = UnicodeAttribute(hash_key=True)
        used_slots = NumberAttribute(null=True)  # not `count`: that is a Model method
        used = NumberSetAttribute(null=True)
        owner = UnicodeAttribute(null=True)  # a bot token claim's instance
        sealed = UnicodeAttribute(null=True)  # the bot tokens' digest key

    class AuthItem(Model):
        """One piece of an engine's login state: `creds`, or `<key type>/<key id>` for Signal keys."""

        class Meta(Shared):
            table_name = settings.auth_table

        instance_id = UnicodeAttribute(hash_key=True)
        item_key = UnicodeAttribute(range_key=True)
        sealed = UnicodeAttribute()

    class DeliveryItem(Model):
        """A webhook delivery (pk instance, sk event id), or a per-second rate counter (pk rate#instance)."""

        class Meta(Shared):
            table_name = settings.deliveries_table

        instance_id = UnicodeAttribute(hash_key=True)
        delivery_id = UnicodeAttribute(range_key=True)
        instance_state = UnicodeAttribute(null=True)  # "<instance>#<state>": the by_state index's key
        state = UnicodeAttribute(null=True)
        event_type = UnicodeAttribute(null=True)
        envelope_z = BinaryAttribute(null=True, legacy_encoding=False)
        attempts = NumberAttribute(null=True)
        last_status = NumberAttribute(null=True)
        last_error = UnicodeAttribute(null=True)
        next_attempt_at = UTCDateTimeAttribute(null=True)
        created_at = UTCDateTimeAttribute(null=True)
        updated_at = UTCDateTimeAttribute(null=True)
        hits = NumberAttribute(null=True)
        expires_at = TTLAttribute(null=True)
        by_state = ByState()

    return Tables(instances=InstanceItem, leases=LeaseItem, auth=AuthItem, deliveries=DeliveryItem)


@reaching(DYNAMODB)
def probe(tables: Tables) -> None:
    """For the deep health check: a GetItem (half a read unit; the roles may not DescribeTable)."""
    try:
        tables.instances.get("health-check")  # no instance has this id: theirs are UUIDs
    except DoesNotExist:
        pass


class DynamoInstanceRepository:
    def __init__(self, tables: Tables, box: SecretBox, settings: Settings) -> None:
        self._t = tables
        self._box = box
        self._settings = settings
        self._conn: Connection | None = None
        self._tokens = BotTokenClaims(tables.leases, box)

    # --- reads -------------------------------------------------------------------------------
    @reaching(DYNAMODB)
    def get(self, instance_id: str) -> Instance | None:
        try:
            item = self._t.instances.get(instance_id, consistent_read=True)
        except DoesNotExist:
            return None
        return self._to_domain(item)

    # Listings never need secrets: they are left sealed (no KMS call per item), and empty.
    @reaching(DYNAMODB)
    def list_all(self) -> list[Instance]:
        return [self._to_domain(i, open_secrets=False) for i in self._t.instances.by_record_type.query(RECORD_TYPE)]

    @reaching(DYNAMODB)
    def list_by_company(self, company_id: str) -> list[Instance]:
        return [self._to_domain(i, open_secrets=False) for i in self._t.instances.by_company.query(company_id)]

    # --- create / delete ---------------------------------------------------------------------
    @reaching(DYNAMODB)
    def create(self, instance: Instance, limit: int, port_range: tuple[int, int]) -> Instance:
        for attempt in range(_MAX_TRANSACTION_TRIES):
            port = self._free_port(port_range, attempt)
            claimed = False
            stored = instance.replace(ports={t: port for t in instance.type_instance})
            company = self._t.leases(f"company#{instance.company_id}")
            ports = self._t.leases(PORTS_KEY)
            L = self._t.leases
            try:
                with TransactWrite(connection=self._connection()) as tx:
                    tx.update(
                        company,
                        actions=[L.used_slots.add(1)],
                        condition=L.used_slots.does_not_exist() | (L.used_slots < limit),
                    )
                    tx.update(
                        ports,
                        actions=[L.used.add({port})],
                        condition=L.used.does_not_exist() | ~L.used.contains(port),
                    )
                    tx.save(self._to_item(stored), condition=self._t.instances.instance_id.does_not_exist())
                    claimed = self._tokens.claim(tx, stored)
            except TransactWriteError as exc:
                if unreachable_reason(exc):
                    raise  # an outage, not a lost race: retrying here would only wait longer
                # One reason per item in the order PynamoDB sends them, puts before updates:
                # [instance put, bot token claim put (if claimed), company slots update, ports update].
                reasons = [r.code if r else None for r in exc.cancellation_reasons]
                if claimed and len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                    raise self._tokens.in_use(stored) from exc
                company = 2 if claimed else 1
                if len(reasons) > company and reasons[company] == "ConditionalCheckFailed":
                    raise InstanceManagerError(
                        ErrorCode.INSTANCE_LIMIT_REACHED,
                        f"Company {instance.company_id} already has {limit} instances (the maximum): delete one first",
                    ) from exc
                continue  # a port taken meanwhile, or a conflicting transaction: try again
            return stored
        raise InstanceManagerError(ErrorCode.INTERNAL_ERROR, "Could not reserve a port: too much contention, try again")

    def _free_port(self, port_range: tuple[int, int], attempt: int = 0) -> int:
        """The lowest free port; after a lost race one of the lowest few, at random: concurrent
        creates all read the same lowest port, and retrying on it alone lets only one win a round."""
        try:
            used = set(self._t.leases.get(PORTS_KEY, consistent_read=True).used or ())
        except DoesNotExist:
            used = set()
        free = (port for port in range(port_range[0], port_range[1] + 1) if port not in used)
        candidates = list(itertools.islice(free, 1 + 4 * attempt))
        if candidates:
            return random.choice(candidates)
        raise InstanceManagerError(
            ErrorCode.PORTS_EXHAUSTED,
            f"Every port in INSTANCE_PORT_RANGE {port_range[0]}-{port_range[1]} is in use: delete an instance or widen the range",
        )

    @reaching(DYNAMODB)
    def delete(self, instance: Instance) -> None:
        L = self._t.leases
        ports = set(instance.ports.values())
        try:
            with TransactWrite(connection=self._connection()) as tx:
                tx.delete(self._t.instances(instance.id), condition=self._t.instances.instance_id.exists())
                tx.update(L(f"company#{instance.company_id}"), actions=[L.used_slots.add(-1)], condition=L.used_slots > 0)
                if ports:
                    tx.update(L(PORTS_KEY), actions=[L.used.delete(ports)])
                self._tokens.release(tx, instance)
        except TransactWriteError as exc:
            if unreachable_reason(exc):
                raise
            raise not_found(instance.id) from exc  # deleted by a concurrent call

    # --- updates -----------------------------------------------------------------------------
    def set_desired_state(self, instance_id: str, desired: DesiredState, status: Status) -> None:
        I = self._t.instances
        self._update(instance_id, [I.desired_state.set(desired.value), I.status.set(status.value)])

    def set_task(self, instance_id: str, task_handle: str | None) -> None:
        I = self._t.instances
        self._update(instance_id, [I.task_handle.set(task_handle) if task_handle else I.task_handle.remove()])

    def report(
        self,
        instance_id: str,
        *,
        status: Status | None = None,
        auth_status: AuthStatus | None = None,
        account: str | None = None,
        host: str | None = None,
    ) -> None:
        I = self._t.instances
        actions: list[Any] = []
        if status is not None:
            actions.append(I.status.set(status.value))
        if auth_status is not None:
            actions.append(I.auth_status.set(auth_status.value))
        if account is not None:
            actions.append(I.account.set(account) if account else I.account.remove())
        if host is not None:
            actions.append(I.host.set(host))
        if actions:
            self._update(instance_id, actions)

    def set_webhook(self, instance_id: str, webhook: WebhookConfig) -> None:
        I = self._t.instances
        actions = [
            I.webhook_url.set(webhook.url),
            I.webhook_enabled.set(webhook.enabled),
            I.webhook_events.set(list(webhook.events)),
            I.webhook_headers_sealed.set(self._box.seal(json.dumps(webhook.headers))) if webhook.headers
            else I.webhook_headers_sealed.remove(),
            I.webhook_header_names.set(sorted(webhook.headers)) if webhook.headers else I.webhook_header_names.remove(),
        ]
        self._update(instance_id, actions)

    def set_signing(self, instance_id: str, signing: SigningSecrets) -> None:
        self._update(instance_id, [self._t.instances.signing_sealed.set(self._seal_signing(signing))])

    def _seal_signing(self, signing: SigningSecrets) -> str:
        expires = signing.previous_expires_at.isoformat() if signing.previous_expires_at else None
        return self._box.seal(json.dumps({"current": signing.current, "previous": signing.previous,
                                          "previous_expires_at": expires}))

    def set_qr(self, instance_id: str, qr: str | None) -> None:
        I = self._t.instances
        if qr is None:
            self._update(instance_id, [I.qr.remove()])
        else:
            self._update(instance_id, [I.qr.set(qr), I.qr_updated_at.set(utc_now())])

    def count_key_use(self, instance_id: str) -> None:
        I = self._t.instances
        self._update(instance_id, [I.key_usage_count.add(1), I.key_last_use.set(utc_now())], touch=False)

    def count_log_lines(self, instance_id: str, lines: int) -> None:
        I = self._t.instances
        self._update(instance_id, [I.log_lines.add(lines)], touch=False)

    @reaching(DYNAMODB)
    def _update(self, instance_id: str, actions: list[Any], touch: bool = True) -> None:
        I = self._t.instances
        if touch:
            actions = [*actions, I.updated_at.set(utc_now())]
        try:
            I(instance_id).update(actions=actions, condition=I.instance_id.exists())
        except (UpdateError, PutError) as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return  # deleted meanwhile: nothing left to update
            raise

    # --- mapping -----------------------------------------------------------------------------
    def _connection(self) -> Connection:
        if self._conn is None:  # one botocore client for every transaction, not one each
            s = self._settings
            self._conn = Connection(region=s.region, connect_timeout_seconds=s.aws_connect_timeout_seconds,
                                    read_timeout_seconds=s.aws_read_timeout_seconds,
                                    max_retry_attempts=s.aws_max_attempts - 1)
        return self._conn

    def _to_item(self, i: Instance) -> Any:
        webhook = i.webhook
        return self._t.instances(
            i.id,
            company_id=i.company_id,
            provider=i.provider.value,
            type_instance=list(i.type_instance),
            ports_json=json.dumps(i.ports),
            desired_state=i.desired_state.value,
            status=i.status.value,
            auth_status=i.auth_status.value,
            account=i.account,
            host=i.host,
            task_handle=i.task_handle,
            webhook_url=webhook.url if webhook else None,
            webhook_enabled=webhook.enabled if webhook else None,
            webhook_headers_sealed=self._box.seal(json.dumps(webhook.headers)) if webhook and webhook.headers else None,
            webhook_header_names=sorted(webhook.headers) if webhook and webhook.headers else None,
            webhook_events=list(webhook.events) if webhook else None,
            signing_sealed=self._seal_signing(i.signing) if i.signing else None,
            secrets_sealed=self._box.seal(json.dumps(i.secrets)) if i.secrets else None,
            api_key_sealed=self._box.seal(i.api_key.value),
            key_generated_at=i.api_key.generated_at,
            key_last_use=i.api_key.last_use,
            key_usage_count=i.api_key.usage_count,
            created_at=i.created_at,
            updated_at=i.updated_at,
        )

    def _to_domain(self, item: Any, open_secrets: bool = True) -> Instance:
        def unseal(sealed: str | None, default: str) -> str:
            return self._box.open(sealed) if sealed and open_secrets else default

        webhook = None
        if item.webhook_url:
            headers = json.loads(unseal(item.webhook_headers_sealed, "{}"))
            if not open_secrets:
                headers = dict.fromkeys(item.webhook_header_names or (), "")
            webhook = WebhookConfig(url=item.webhook_url, headers=headers, enabled=bool(item.webhook_enabled),
                                    events=tuple(item.webhook_events or DEFAULT_EVENTS))
        signing = None
        if item.signing_sealed and open_secrets:
            data = json.loads(self._box.open(item.signing_sealed))
            expires = data.get("previous_expires_at")
            signing = SigningSecrets(data["current"], data.get("previous"),
                                     datetime.fromisoformat(expires) if expires else None)
        return Instance(
            id=item.instance_id,
            company_id=item.company_id,
            provider=Provider(item.provider),
            type_instance=tuple(item.type_instance),
            ports=json.loads(item.ports_json),
            api_key=ApiKey(
                value=unseal(item.api_key_sealed, ""),
                generated_at=item.key_generated_at,
                last_use=item.key_last_use,
                usage_count=int(item.key_usage_count or 0),
            ),
            created_at=item.created_at,
            updated_at=item.updated_at,
            desired_state=DesiredState(item.desired_state),
            status=Status(item.status),
            auth_status=AuthStatus(item.auth_status),
            account=item.account,
            webhook=webhook,
            secrets=json.loads(unseal(item.secrets_sealed, "{}")),
            task_handle=item.task_handle,
            host=item.host,
            log_lines=int(item.log_lines or 0),
            qr=item.qr,
            qr_updated_at=item.qr_updated_at,
            signing=signing,
        )
