"""Executable docs: run the shell examples of README.md and docs/*.md against a fresh Medic.

How a doc marks its examples (docs/writing-docs.md explains it for writers):

- ``<!-- run -->`` on the line before a fenced ``sh``/``bash`` block: the block is run.
- ``<!-- skip: REASON -->`` instead: not run (it needs Slack, compose, a v1 database...); the
  reason is printed in the summary.
- ``<!-- output -->`` before a fenced block that follows a run block: what that run block must
  print. Its JSON values must appear in the block's output in that order (objects may have more
  keys, ``...`` stands for any value, ``"2026-...Z"`` for any text in between); an
  ``HTTP/1.1 422 ...`` line says that the block's requests answer that status; any other line
  must appear in the output.

Every fenced ``sh``/``bash``/``shell`` block must carry ``run`` or ``skip``: an unmarked one is
an error, so a new example is never silently left out.

The blocks of one doc run in order in one bash session (variables carry over), in the repository
root, against one throwaway instance started by ``scripts/run.sh`` (as ``make run`` starts it)
with its own data directory and free port. ``localhost:8000`` and ``127.0.0.1:8000`` in a block
are that instance's address; ``mdk_...`` is an admin key (the one ``make run`` printed for the
README, a fresh one with the same limits for every other doc). ``curl`` in a block records each
answer's status: a 4xx/5xx the doc does not show as expected output fails the block, as does any
failing command (``set -e`` rules, with ``pipefail``).

    python -m tests.docs.runner                 # every doc
    python -m tests.docs.runner docs/api.md     # some docs
    python -m tests.docs.runner --list          # markers only, no instance
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGS = {"sh", "bash", "shell"}
MARKER = re.compile(r"^<!--\s*(run|output|skip\s*:\s*(?P<reason>.*?))\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
DOC_TIMEOUT = 240
ADMIN_PLACEHOLDER = "mdk_..."
ANY = "@@any@@"  # what a bare ... in expected JSON becomes


class DocError(Exception):
    """A doc whose markers cannot be understood."""


@dataclass
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    action: str  # "run", "skip", "output", "" (a fence that is not an example)
    reason: str = ""
    output: Block | None = None  # for a run block: its expected output

    @property
    def where(self) -> str:
        doc = self.doc.relative_to(ROOT) if self.doc.is_relative_to(ROOT) else self.doc
        return f"{doc}:{self.line}"


def extract(doc: Path) -> list[Block]:
    """The fenced blocks of *doc* with their markers; raises DocError on a misplaced marker or an
    unmarked shell block."""
    lines = doc.read_text().splitlines()
    blocks: list[Block] = []
    pending: re.Match | None = None
    pending_line = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence is None:
            marker = MARKER.match(line.strip())
            if marker:
                pending, pending_line = marker, i + 1
            elif line.strip():
                pending = None
            i += 1
            continue
        close = fence.group("fence")
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith(close):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        lang = fence.group("lang").lower()
        action, reason = "", ""
        if pending is not None:
            kind = pending.group(1)
            if kind.startswith("skip"):
                action, reason = "skip", pending.group("reason") or ""
                if not reason:
                    raise DocError(f"{doc}:{pending_line}: `skip:` needs a reason")
            else:
                action = kind
        block = Block(doc, start + 1, lang, "\n".join(body) + "\n", action, reason)
        if action == "output":
            owner = next((b for b in reversed(blocks) if b.action == "run"), None)
            if owner is None or owner.output is not None:
                raise DocError(f"{block.where}: `output` must follow a run block (one each)")
            owner.output = block
            try:
                parse_expected(block.text)
            except DocError as exc:
                raise DocError(f"{block.where}: {exc}") from exc
        elif action in {"run", "skip"} and lang not in SHELL_LANGS:
            raise DocError(f"{block.where}: `{action}` marks a ```{lang} block, not a shell one")
        elif action == "" and lang in SHELL_LANGS:
            raise DocError(
                f"{block.where}: shell example without a marker: put `<!-- run -->` or "
                "`<!-- skip: why -->` on the line before it"
            )
        blocks.append(block)
        pending = None
    return blocks


# --- expected output --------------------------------------------------------------------------


def _json_end(text: str, start: int) -> int:
    """Index after the JSON object/array starting at *start* (brackets counted outside strings)."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def _wildcards(chunk: str) -> str:
    """Replace a bare ``...`` (outside strings) by a value matching anything; drop a trailing
    ``, ...`` member (objects and lists may hold more anyway)."""
    out, i, in_string, escaped = [], 0, False, False
    while i < len(chunk):
        ch = chunk[i]
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            i += 1
        elif ch == '"':
            in_string = True
            out.append(ch)
            i += 1
        elif chunk.startswith("...", i):
            out.append(json.dumps(ANY))
            i += 3
        else:
            out.append(ch)
            i += 1
    text = "".join(out)
    return re.sub(r',\s*"' + ANY + r'"\s*(?=[}\]])', "", text)


@dataclass
class Expected:
    statuses: list[int] = field(default_factory=list)
    values: list[object] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def parse_expected(text: str) -> Expected:
    expected = Expected()
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        if text[i] in "{[":
            end = _json_end(text, i)
            if end < 0:
                raise DocError(f"unbalanced JSON in expected output: {text[i : i + 60]!r}")
            chunk = _wildcards(text[i:end])
            try:
                expected.values.append(json.loads(chunk))
            except json.JSONDecodeError as exc:
                raise DocError(f"expected output is not JSON ({exc}): {chunk[:80]!r}") from exc
            i = end
            continue
        end = text.find("\n", i)
        end = len(text) if end < 0 else end
        line = text[i:end].strip()
        status = re.match(r"HTTP/[\d.]+ (\d{3})\b", line)
        if status:
            expected.statuses.append(int(status.group(1)))
        else:
            expected.lines.append(line)
        i = end
    return expected


def json_values(text: str) -> list[object]:
    """Every JSON object or array in *text*, in order (other text is skipped)."""
    values, i = [], 0
    decoder = json.JSONDecoder()
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                i += 1
                continue
            values.append(value)
            i = end
        else:
            i += 1
    return values


def _glob(pattern: str, text: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("..."))
    return re.fullmatch(regex, text, re.DOTALL) is not None


def matches(expected: object, actual: object) -> bool:
    if expected == ANY:
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and _in_order(expected, actual)
    if isinstance(expected, str) and "..." in expected:
        return _glob(expected, actual if isinstance(actual, str) else json.dumps(actual))
    number = (int, float)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, number) and isinstance(actual, number):  # 5 shows 5.0
        return expected == actual
    return type(expected) is type(actual) and expected == actual


def _in_order(expected: list, actual: list) -> bool:
    it = iter(actual)
    return all(any(matches(e, a) for a in it) for e in expected)


def compare(expected: Expected, stdout: str, stderr: str, statuses: list[int]) -> list[str]:
    """What differs between the doc's expected output and what the block did (empty: fine)."""
    problems = []
    remaining = list(statuses)
    for status in expected.statuses:
        if status in remaining:
            remaining.remove(status)
        else:
            problems.append(f"expected an HTTP {status} answer; got {statuses}")
    unexpected = [s for s in remaining if s >= 400 or s == 0]
    if unexpected:
        problems.append(f"unexpected HTTP status {unexpected} (answers: {statuses})")
    actual = json_values(stdout)
    it = iter(actual)
    for value in expected.values:
        if not any(matches(value, a) for a in it):
            problems.append(
                "expected JSON not found in the output (in order): "
                + json.dumps(value, ensure_ascii=False).replace(json.dumps(ANY), "...")
            )
            break
    out_lines = [line.strip() for line in (stdout + "\n" + stderr).splitlines()]
    for line in expected.lines:
        if not any(_glob(line, actual_line) for actual_line in out_lines):
            problems.append(f"expected line not in the output: {line!r}")
    return problems


# --- running ----------------------------------------------------------------------------------

PRELUDE = r"""
set -o pipefail -o errtrace
__medic_fail() { echo "line $1 of the block: exit $2: $3" >> "$MEDIC_DOCS_WORK/fail"; }
trap '__medic_fail "$LINENO" "$?" "$BASH_COMMAND"' ERR
# curl records each answer's status for the runner; the body is printed as usual.
curl() {
  local a
  for a in "$@"; do
    case "$a" in -o|--output|-w|--write-out|-D|--dump-header) command curl "$@"; return;; esac
  done
  local body rc
  body=$(mktemp "$MEDIC_DOCS_WORK/body.XXXXXX")
  command curl -sS -o "$body" -w '%{http_code}\n' "$@" >> "$MEDIC_DOCS_WORK/status"
  rc=$?
  cat "$body"
  [ -s "$body" ] && [ "$(tail -c1 "$body" | od -An -c | tr -d ' ')" != '\n' ] && echo
  rm -f "$body"
  return $rc
}
"""


@dataclass
class Result:
    block: Block
    ok: bool
    problems: list[str]
    stdout: str = ""
    stderr: str = ""


def substitute(text: str, *, base: str, key: str) -> str:
    text = text.replace("localhost:8000", base).replace("127.0.0.1:8000", base)
    return text.replace(ADMIN_PLACEHOLDER, key)


def run_doc(blocks: list[Block], *, env: dict[str, str], base: str, key: str) -> list[Result]:
    """Run the doc's run blocks in order in one bash session; stop at the first failure."""
    runnable = [b for b in blocks if b.action == "run"]
    if not runnable:
        return []
    work = Path(tempfile.mkdtemp(prefix="medic-docs-"))
    try:
        script = [PRELUDE]
        for n, block in enumerate(runnable):
            path = work / f"block{n}.sh"
            path.write_text(substitute(block.text, base=base, key=key))
            script.append(
                f': > "$MEDIC_DOCS_WORK/status"; rm -f "$MEDIC_DOCS_WORK/fail"\n'
                f'{{ source "{path}"; }} > "{work}/out{n}" 2> "{work}/err{n}" < /dev/null\n'
                f'cp "$MEDIC_DOCS_WORK/status" "{work}/status{n}"\n'
                f'if [ -s "$MEDIC_DOCS_WORK/fail" ]; then mv "$MEDIC_DOCS_WORK/fail" '
                f'"{work}/fail{n}"; exit 3; fi\n'
            )
        (work / "doc.sh").write_text("".join(script))
        session_env = env | {"MEDIC_DOCS_WORK": str(work)}
        timed_out = False
        try:
            subprocess.run(
                ["bash", "--noprofile", "--norc", str(work / "doc.sh")],
                cwd=ROOT,
                env=session_env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=DOC_TIMEOUT,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired:
            timed_out = True
        results = []
        for n, block in enumerate(runnable):
            out_path = work / f"out{n}"
            if not out_path.exists():
                break
            stdout = out_path.read_text(errors="replace")
            stderr = (work / f"err{n}").read_text(errors="replace")
            status_path = work / f"status{n}"
            if not status_path.exists():
                problem = f"did not finish within {DOC_TIMEOUT}s" if timed_out else "aborted"
                results.append(Result(block, False, [problem], stdout, stderr))
                break
            statuses = [int(s) for s in status_path.read_text().split()]
            problems = []
            fail = work / f"fail{n}"
            if fail.exists():
                problems.append("a command failed: " + fail.read_text().strip())
            expected = parse_expected(block.output.text) if block.output else Expected()
            problems += compare(expected, stdout, stderr, statuses)
            results.append(Result(block, not problems, problems, stdout, stderr))
            if problems:
                break
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the throwaway instance -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env() -> dict[str, str]:
    """A user's shell: PATH and locale, no Medic, Django or database settings."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "USER", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    agent = ROOT / "agent-rs" / "target" / "release"
    if (agent / "medic-agent").exists():
        env["PATH"] = f"{agent}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


class Instance:
    """``scripts/run.sh`` with its own data directory and port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="medic-docs-instance-"))
        self.port = free_port()
        self.base = f"127.0.0.1:{self.port}"
        self.env = base_env() | {"MEDIC_VAR_DIR": str(self.dir / "var")}
        self.log = self.dir / "run.log"
        self.proc: subprocess.Popen | None = None
        self.key = ""

    def start(self, timeout: float = 180) -> None:
        env = self.env | {
            "PORT": str(self.port),
            "PYTHON": os.environ.get("PYTHON", "python3"),
            "MEDIC_WORKER_METRICS_ADDR": f"127.0.0.1:{free_port()}",
        }
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                ["bash", "scripts/run.sh"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"scripts/run.sh exited:\n{self.log.read_text()[-3000:]}")
            found = re.search(r"Admin API key created \(shown once\): (mdk_\w+)", self._log())
            if found and self._live():
                self.key = found.group(1)
                return
            time.sleep(0.5)
        raise RuntimeError(f"Medic did not start in {timeout}s:\n{self._log()[-3000:]}")

    def _log(self) -> str:
        return re.sub(r"\x1b\[[0-9;]*m", "", self.log.read_text(errors="replace"))

    def _live(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.base}/health/live", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def admin_key(self, name: str) -> str:
        """A new admin key with the bootstrap key's limits, made through the API."""
        request = urllib.request.Request(
            f"http://{self.base}/v2/api-keys",
            data=json.dumps(
                {"name": name, "scopes": ["admin"], "rate_limits": {"management": 300}}
            ).encode(),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["key"]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- command line -----------------------------------------------------------------------------


def default_docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _indent(text: str, prefix: str = "    ") -> str:
    return "".join(prefix + line + "\n" for line in text.rstrip().splitlines()) or prefix + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("docs", nargs="*", type=Path)
    parser.add_argument("--list", action="store_true", help="check the markers only")
    args = parser.parse_args(argv)
    docs = [p.resolve() for p in args.docs] or default_docs()

    try:
        extracted = {doc: extract(doc) for doc in docs}
    except DocError as exc:
        print(f"docs: {exc}", file=sys.stderr)
        return 1
    skipped = [b for blocks in extracted.values() for b in blocks if b.action == "skip"]
    runnable = sum(b.action == "run" for blocks in extracted.values() for b in blocks)
    if args.list:
        for blocks in extracted.values():
            for b in blocks:
                if b.action in {"run", "skip"}:
                    print(f"{b.where}: {b.action}{': ' + b.reason if b.reason else ''}")
        print(f"docs: {runnable} runnable examples, {len(skipped)} marked skip")
        return 0

    failures: list[Result] = []
    ran = 0
    instance = Instance() if runnable else None
    started = time.monotonic()
    try:
        if instance:
            instance.start()
            print(
                f"docs: Medic started by scripts/run.sh on {instance.base} "
                f"({time.monotonic() - started:.0f}s)",
                flush=True,
            )
        for doc, blocks in extracted.items():
            if not any(b.action == "run" for b in blocks):
                continue
            name = str(doc.relative_to(ROOT)) if doc.is_relative_to(ROOT) else str(doc)
            key = instance.key if doc == ROOT / "README.md" else instance.admin_key(f"docs {name}")
            results = run_doc(blocks, env=instance.env, base=instance.base, key=key)
            ran += sum(r.ok for r in results)
            bad = [r for r in results if not r.ok]
            total = sum(b.action == "run" for b in blocks)
            print(f"docs: {name}: {sum(r.ok for r in results)}/{total} ran", flush=True)
            failures += bad
    finally:
        if instance:
            instance.stop()

    for failure in failures:
        print(f"\nFAILED {failure.block.where}", file=sys.stderr)
        print(_indent(failure.block.text), file=sys.stderr, end="")
        for problem in failure.problems:
            print(f"  - {problem}", file=sys.stderr)
        print("  stdout:\n" + _indent(failure.stdout[-4000:]), file=sys.stderr, end="")
        print("  stderr:\n" + _indent(failure.stderr[-4000:]), file=sys.stderr, end="")
    reasons = Counter(b.reason for b in skipped)
    print(
        f"docs: {ran} of {runnable} examples ran, {len(skipped)} skipped, "
        f"{len(failures)} failed ({time.monotonic() - started:.0f}s)"
    )
    for reason, count in sorted(reasons.items()):
        print(f"docs:   skipped {count}: {reason}")
    return 1 if failures or ran < runnable else 0


if __name__ == "__main__":
    sys.exit(main())
