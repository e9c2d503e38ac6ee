"""Reads README.md into what tests/docs/test_readme.py runs, in README order.

The conventions the README follows (its "Tests and benchmarks" section says them too):
- A fenced ```sh (or bash, shell) block runs in a bash shell with `set -euo pipefail`, statement by
  statement. Every `## ` section gets a shell of its own, so a walkthrough stands alone; a section that
  starts with `<!-- same shell as the section above -->` goes on in the shell of the one before.
- A ```sh terminals block holds the commands a person starts in terminals of their own: each line is
  started in the background. `make run` there is replaced by the test's own stack, started with the
  variables the line sets (a value written `<…>` is pasted from what an earlier terminal printed).
- A ```sh not-run: <reason> block is skipped, and the test lists it with its reason.
- A line `# → ANSWER` shows what the statement above it prints. In a table, `` `curl …` → `ANSWER` ``
  does the same for the command in the cell. Every backticked `curl …` in a table cell runs.
- A ```python or ```ts block whose first line is a comment naming a file (`# example.py`) is that
  file: it is written to the shell's current folder, and the statement right after it (the one that
  runs it) must print the answers its `# → ` or `// → ` comments show, line by line.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SHELLS = {"sh", "bash", "shell"}
SAME_SHELL = "<!-- same shell as the section above -->"
ANSWER = re.compile(r"^\s*# → (.*)$")
FILE_ANSWER = re.compile(r"(?:#|//) → (.*)$")
TABLE_COMMAND = re.compile(r"`((?:[A-Z_]+=\$\()?curl [^`]*)`(?:\s*→\s*`([^`]*)`)?")
FILE_NAME = re.compile(r"^(?:#|//) ([\w.-]+\.(?:py|ts|mts|mjs|js))$")


@dataclass
class Statement:
    """One complete shell statement (as bash parses it), with the answer the README shows for it."""

    text: str
    line: int
    answer: str | None = None
    answer_lines: list[str] | None = None  # a file's answers, when this statement runs that file


@dataclass
class Terminal:
    command: str
    line: int

    @property
    def is_stack(self) -> bool:
        return bool(re.search(r"(^|\s)make run\s*$", self.command))


@dataclass
class Skipped:
    line: int
    reason: str
    text: str


@dataclass
class SourceFile:
    name: str
    text: str
    line: int
    answers: list[str]


Item = Statement | Terminal | Skipped | SourceFile


@dataclass
class Session:
    """What one shell runs: one or more `## ` sections of the README."""

    titles: list[str]
    items: list[Item] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " + ".join(self.titles)

    def statements(self) -> list[Statement]:
        return [item for item in self.items if isinstance(item, Statement)]


class ReadmeError(AssertionError):
    pass


def complete(text: str) -> bool:
    """Whether bash reads `text` as complete statements (no open quote, paren, block or here-document)."""
    if text.endswith("\\"):
        return False  # a line continued: bash would take the backslash at the end of its input as nothing
    checked = subprocess.run(["bash", "-n", "-c", text], capture_output=True, text=True)
    return checked.returncode == 0 and "here-document" not in checked.stderr


def statements(block: str, first_line: int) -> list[Statement]:
    """Splits a shell block into statements and attaches each `# → ` answer to the statement above it."""
    found: list[Statement] = []
    pending: list[str] = []
    start = first_line
    for number, line in enumerate(block.splitlines(), first_line):
        answer = ANSWER.match(line)
        if not pending:
            if answer:
                if not found:
                    raise ReadmeError(f"README.md:{number}: an answer with no command above it")
                if found[-1].answer is not None:
                    raise ReadmeError(f"README.md:{number}: a second answer for the command on line {found[-1].line}")
                found[-1].answer = answer.group(1)
                continue
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = number
        elif answer:
            raise ReadmeError(f"README.md:{number}: an answer inside the unfinished command of line {start}")
        pending.append(line)
        if complete("\n".join(pending)):
            found.append(Statement("\n".join(pending), start))
            pending = []
    if pending:
        raise ReadmeError(f"README.md:{start}: the command that starts here never ends")
    return found


def terminals(block: str, first_line: int) -> list[Terminal]:
    return [Terminal(line.strip(), number) for number, line in enumerate(block.splitlines(), first_line)
            if line.strip() and not line.lstrip().startswith("#")]


def table_statements(row: str, number: int) -> list[Statement]:
    return [Statement(command, number, answer or None) for command, answer in TABLE_COMMAND.findall(row)]


def source_file(language: str, block: str, first_line: int) -> SourceFile | None:
    lines = block.splitlines()
    named = FILE_NAME.match(lines[0].strip()) if lines else None
    if not named:
        return None
    answers = [m.group(1).strip() for line in lines if (m := FILE_ANSWER.search(line))]
    return SourceFile(named.group(1), block, first_line, answers)


def sessions(text: str | None = None) -> list[Session]:
    lines = (README.read_text() if text is None else text).splitlines()
    current = Session(["(before the first section)"])
    found = [current]
    waiting_file: SourceFile | None = None
    index = 0
    while index < len(lines):
        line, number = lines[index], index + 1
        if line.startswith("## "):
            title = line[3:].strip()
            following = next((ahead for ahead in lines[index + 1:] if ahead.strip()), "")
            if following.strip() == SAME_SHELL:
                current.titles.append(title)
            else:
                current = Session([title])
                found.append(current)
        elif line.startswith("```"):
            info = line[3:].strip()
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            block = "\n".join(lines[index + 1:end])
            language, _, rest = info.partition(" ")
            if language in SHELLS:
                if rest.startswith("not-run"):
                    reason = rest.partition(":")[2].strip()
                    if not reason:
                        raise ReadmeError(f"README.md:{number}: a not-run block must say why (```sh not-run: <reason>)")
                    current.items.append(Skipped(number, reason, block))
                elif rest == "terminals":
                    current.items.extend(terminals(block, number + 1))
                elif rest:
                    raise ReadmeError(f"README.md:{number}: unknown shell block tag {rest!r}")
                else:
                    found_statements = statements(block, number + 1)
                    if waiting_file is not None and found_statements:
                        found_statements[0].answer_lines = waiting_file.answers
                        waiting_file = None
                    current.items.extend(found_statements)
            elif (written := source_file(language, block, number + 1)) is not None:
                current.items.append(written)
                waiting_file = written
            index = end
        elif line.startswith("|"):
            current.items.extend(table_statements(line, number))
        index += 1
    if waiting_file is not None:
        raise ReadmeError(f"README.md:{waiting_file.line}: {waiting_file.name} is written but no shell block runs it")
    return [session for session in found if session.items]
