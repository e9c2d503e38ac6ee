"""Two local stacks for the SDK tests, started side by side: an open one (no admin key), where the
seed's example runs as written, and a keyed one (ADMIN_API_KEY set) for the admin-key option. Both
talk to a fake Telegram (every token below is a bot there) and a fake WhatsApp Web server.
Ports: 3500 and 3550 (moto and launcher at +1000 and +1001), instances on 9500-9599."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.harness import LocalStack, port_open
from tests.peers.telegram_bot_api import FakeTelegramServer
from tests.peers.whatsapp_server import FakeWhatsAppServer

ROOT = Path(__file__).resolve().parents[2]
SDK_PYTHON = ROOT / "sdk" / "python"
SDK_TYPESCRIPT = ROOT / "sdk" / "typescript"
# The Python client is a package of its own, not installed into the repository's venv.
if str(SDK_PYTHON) not in sys.path:
    sys.path.insert(0, str(SDK_PYTHON))

OPEN_PORT, KEYED_PORT = 3500, 3550
ADMIN_KEY = "sdk-tests-admin-key-0123456789"
SEED_TOKEN = "123456789:AABBCCDDEEFFgghhiijjkkll"  # the seed example's bot token
PY_TOKEN = "200001:AAPythonClientTestToken_abc"
TS_TOKEN = "200002:AATypeScriptClientTestToken_abc"
KEYED_PY_TOKEN = "200003:AAKeyedStackPythonToken_abc"
KEYED_TS_TOKEN = "200004:AAKeyedStackTypeScriptToken_abc"


@dataclass(frozen=True)
class Stacks:
    open: LocalStack
    keyed: LocalStack
    telegram: FakeTelegramServer
    whatsapp: FakeWhatsAppServer


def require_free(*ports: int) -> None:
    """A stack left over (or another run of these tests) on our ports would answer our health checks,
    and the tests would run against it: refuse to start instead."""
    busy = [port for port in ports if port_open(port)]
    if busy:
        raise RuntimeError(f"ports {busy} are in use: another run of tests/sdk, or a stack left behind?")


@contextmanager
def running_stacks(data_dir: Path) -> Iterator[Stacks]:
    require_free(*(base + offset for base in (OPEN_PORT, KEYED_PORT) for offset in (0, 1000, 1001)))
    telegram = FakeTelegramServer([SEED_TOKEN, PY_TOKEN, TS_TOKEN, KEYED_PY_TOKEN, KEYED_TS_TOKEN])
    telegram.start()
    whatsapp = FakeWhatsAppServer()
    open_stack = keyed = None
    try:
        whatsapp.start()
        fakes = {"TELEGRAM_API_ROOT": telegram.api_root, **whatsapp.environment()}
        open_stack = LocalStack(data_dir / "open", OPEN_PORT, {**fakes, "INSTANCE_PORT_RANGE": "9500-9549"})
        keyed = LocalStack(data_dir / "keyed", KEYED_PORT,
                           {**fakes, "INSTANCE_PORT_RANGE": "9550-9599", "ADMIN_API_KEY": ADMIN_KEY})
        with ThreadPoolExecutor(2) as pool:
            for started in [pool.submit(open_stack.start), pool.submit(keyed.start)]:
                started.result()
        yield Stacks(open_stack, keyed, telegram, whatsapp)
    finally:
        codes = [stack.stop() for stack in (open_stack, keyed) if stack and stack.process and stack.process.poll() is None]
        whatsapp.stop()
        telegram.stop()
    assert codes == [0, 0], f"the stacks exited with {codes}"
