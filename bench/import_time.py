"""Figure 2: `import app` time next to a bare Chalice app, each in fresh subprocesses, same run.

Every Lambda invocation on a cold container imports all of app.py; the bare app (`from chalice
import Chalice; app = Chalice('x')`) is the floor Chalice itself sets. Runs alternate between the
two so that noise on this shared machine hits both alike."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .common import PYTHON, ROOT, SectionResult, median, say, table

KEY = "import-time"
TITLE = "Import time of app.py"

BARE_APP = "from chalice import Chalice\n\napp = Chalice('x')\n"
_HEAVY = ("boto3", "botocore", "pynamodb", "cryptography", "requests", "urllib3", "aiohttp", "telegram", "moto")
# Runs in the subprocess: time the import alone (interpreter start-up excluded), and list what it pulled in.
_PROBE = """
import json, sys, time
before = set(sys.modules)
start = time.perf_counter()
import {module}
seconds = time.perf_counter() - start
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"seconds": seconds, "modules": len(set(sys.modules) - before), "heavy": heavy}}))
"""


@dataclass
class Subject:
    label: str
    module: str
    cwd: Path
    seconds: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    modules: int = 0
    heavy: list[str] = field(default_factory=list)


def _once(subject: Subject, env: dict[str, str]) -> tuple[float, float, int, list[str]]:
    code = _PROBE.format(module=subject.module, heavy=_HEAVY)
    started = time.perf_counter()
    done = subprocess.run([PYTHON, "-c", code], cwd=subject.cwd, env=env, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"importing {subject.module} failed: {done.stderr.strip()[-800:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return float(answer["seconds"]), wall, int(answer["modules"]), list(answer["heavy"])


def run(runs: int = 10) -> SectionResult:
    say(f"== {TITLE}: median of {runs} fresh subprocesses each, alternating ==")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
        Path(tmp, "bare_chalice_app.py").write_text(BARE_APP)
        subjects = [
            Subject("bare Chalice app (`from chalice import Chalice; app = Chalice('x')`)", "bare_chalice_app", Path(tmp)),
            Subject("`import app` (Instance Manager)", "app", ROOT),
            Subject("provider process imports (`provider.__main__` + Telegram engine)",
                    "provider.__main__, provider.engines.telegram", ROOT),
        ]
        for subject in subjects:  # warm the bytecode caches: every later run compares like with like
            _once(subject, env)
        for _ in range(runs):
            for subject in subjects:
                seconds, wall, modules, heavy = _once(subject, env)
                subject.seconds.append(seconds)
                subject.wall.append(wall)
                subject.modules, subject.heavy = modules, heavy
    bare, app = subjects[0], subjects[1]
    ratio = median(app.seconds) / median(bare.seconds)
    rows = [
        [s.label, f"{median(s.seconds) * 1000:.0f}", f"{min(s.seconds) * 1000:.0f}-{max(s.seconds) * 1000:.0f}",
         f"{median(s.wall) * 1000:.0f}", s.modules, ", ".join(s.heavy) or "none"]
        for s in subjects
    ]
    body = table(["Import", "Median ms", "Range ms", "Process wall median ms", "Modules added", "Heavy modules loaded"],
                 rows)
    ratio_line = (f"Ratio `import app` / bare Chalice app: {ratio:.2f}x (medians of the same run; "
                  f"`import app` costs {1000 * (median(app.seconds) - median(bare.seconds)):.0f} ms more).")
    say(body)
    say(ratio_line)
    lazy = [m for m in ("boto3", "botocore", "pynamodb", "cryptography", "requests") if m in app.heavy]
    lazy_line = (
        "`import app` loads none of boto3, botocore, pynamodb, cryptography or requests: chalicelib/wiring.py "
        "builds the adapters on first use, so handlers that never touch AWS (health, a 401) do not pay for them."
        if not lazy else
        f"`import app` loads {', '.join(lazy)} at module scope: find the import chain with "
        "`python -X importtime -c 'import app'`."
    )
    markdown = "\n".join([
        f"Time of the `import` statement alone (interpreter start-up excluded), in a fresh `{Path(PYTHON).name}` "
        f"subprocess per run, {runs} runs of each, alternating, after one discarded warm-up run each (bytecode "
        "caches warm). \"Process wall\" is the whole subprocess, start-up included, as seen by the parent. "
        "The provider row is for scale: what each provider process imports before it starts.",
        "",
        body,
        "",
        ratio_line,
        "",
        lazy_line,
    ])
    return SectionResult(KEY, TITLE, markdown)
