"""The code blocks of README.md and docs/**/*.md, and a runner that executes one page's blocks.

The convention every page is written to:

- every fenced ```python and ```bash block runs; the blocks of one page run top to bottom in one
  fresh temporary working directory, the python blocks in one interpreter (shared globals), with
  `keras-zoo` on PATH and this checkout's package importable;
- a block whose fence is preceded, on the line just above, by ``<!-- docs: skip (REASON) -->`` does
  not run (the reason is required); by ``<!-- docs: slow -->`` runs only in the slow set;
- ```text blocks are output and never run; other languages (json, yaml, ...) are not run either, but
  ```sh, ```shell, ```console, ```py and ```python3 are refused, so that no example escapes by its
  fence's spelling.

Why our own collector rather than pytest-markdown-docs or pytest-codeblocks (both maintained):
pytest-markdown-docs runs python only (no bash) and makes one test per block in the pytest process,
so a page's blocks cannot share a working directory with its shell blocks, and its skip syntax is an
info-string flag, not a comment with a reason; pytest-codeblocks runs bash and python but each block
on its own (state is shared only by explicit `cont` markers) and its skip marker takes no reason.
Neither gives "one page, one fresh directory, one interpreter" or refuses a skip without a reason;
what the convention needs is ~100 lines here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import signal
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
HERE = pathlib.Path(__file__).resolve().parent
RUN = {"python", "bash"}
NOT_RUN = {"text", "json", "yaml", "toml", "ini", "csv", "markdown", "diff", "mermaid"}
MARKER = re.compile(r"^\s*<!--\s*docs:(.*?)-->\s*$")
SKIP = re.compile(r"^\s*skip\s*\((.*)\)\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


class PageError(ValueError):
    """A page breaks the convention (a marker without a reason, an unknown fence language...)."""


@dataclasses.dataclass
class Block:
    page: str
    line: int          # 1-based line of the first line of code
    lang: str
    code: str
    skip: str | None   # the reason, when skipped
    slow: bool


def pages() -> list[pathlib.Path]:
    """README.md and every Markdown page under docs/, in a stable order."""
    return [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))


def parse(path: pathlib.Path) -> list[Block]:
    """Every fenced block of a page with its marker; PageError for anything off the convention."""
    rel = str(path.relative_to(ROOT))
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i, pending = [], 0, None
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line)
        if marker:
            body = marker.group(1).strip()
            skip = SKIP.match(body)
            if body == "slow":
                pending = ("slow", None)
            elif skip and skip.group(1).strip():
                pending = ("skip", skip.group(1).strip())
            else:
                raise PageError(f"{rel}:{i + 1}: {line.strip()!r}: a docs marker is "
                                "'<!-- docs: skip (reason) -->' (the reason is required) or '<!-- docs: slow -->'")
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if not FENCE.match(nxt):
                raise PageError(f"{rel}:{i + 1}: the docs marker must sit on the line just above a code fence")
            i += 1
            continue
        fence = FENCE.match(line)
        if not fence:
            pending = None
            i += 1
            continue
        indent, ticks, lang = fence.groups()
        start = i + 1
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(ticks):
            i += 1
        if i >= len(lines):
            raise PageError(f"{rel}:{start}: code fence never closed")
        code = "\n".join(l[len(indent):] if l.startswith(indent) else l for l in lines[start:i])
        lang = lang.lower()
        if lang not in RUN | NOT_RUN:
            raise PageError(f"{rel}:{start}: fence language {lang or '(none)'!r}; use one of "
                            f"{sorted(RUN)} (executed) or {sorted(NOT_RUN)} (not executed)")
        kind, reason = pending or (None, None)
        if kind and lang not in RUN:
            raise PageError(f"{rel}:{start}: a docs marker on a {lang!r} block, which never runs")
        blocks.append(Block(rel, start + 1, lang, code, reason if kind == "skip" else None, kind == "slow"))
        pending = None
        i += 1
    return blocks


# Runs in a fresh interpreter inside the page's temporary directory: python blocks are exec'd in one
# namespace (compiled under the page's name and line numbers, so a traceback points into the page),
# bash blocks run with -e -o pipefail; the first failure stops the page. A page with `keras-zoo`
# commands that import TensorFlow first imports it and forks the server of tests/cli_zygote.py, which
# their `keras-zoo` shim asks to run them (TensorFlow imported once per page, not once per command).
DRIVER = r"""
import importlib.util, json, os, shutil, signal, subprocess, sys, tempfile, time, traceback
blocks, server_script, address, server_pid, needs_server = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
started = time.perf_counter()
server = folder = None
if needs_server:  # a fork of this interpreter, once it has imported TensorFlow, serves the commands
    spec = importlib.util.spec_from_file_location("cli_zygote", server_script)
    zygote = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zygote)
    folder = tempfile.mkdtemp(prefix="kzdocs")
    path = os.path.join(folder, "cli")
    server = zygote.start_in_fork(path)
    os.environ.update({address: path, server_pid: str(server)})
try:
    for block in blocks:
        where = f"{block['page']}:{block['line']}"
        print(f"\n===== {where} ({block['lang']}, at {time.perf_counter() - started:.1f} s)", flush=True)
        if block["lang"] == "python":
            try:
                exec(compile("\n" * (block["line"] - 1) + block["code"], block["page"], "exec"), namespace)
            except BaseException:
                traceback.print_exc()
                print(f"===== FAILED: the python block at {where}", flush=True)
                sys.exit(1)
        else:
            sys.stdout.flush()
            code = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block["code"]]).returncode
            if code:
                print(f"===== FAILED: the bash block at {where} (exit status {code})", flush=True)
                sys.exit(1)
finally:
    if server is not None:
        os.kill(server, signal.SIGKILL)
        os.waitpid(server, 0)
        shutil.rmtree(folder, ignore_errors=True)
"""


def environment(home: pathlib.Path) -> dict:
    """Env for a page: this checkout importable, `keras-zoo` (this checkout's) first on PATH."""
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "keras-zoo"
    # The page's server runs the command (tests/cli_zygote.py); without one, `python -m keras_zoo.cli`.
    client = HERE / "cli_zygote.py"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{client}" run "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env.update({
        "PATH": os.pathsep.join([str(bin_dir), os.path.dirname(sys.executable), env.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]),
        "KERAS_ZOO_HOME": str(home / "keras_zoo_home"),   # presets and downloads stay in the test
        "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1",
    })
    return env


def run_page(blocks: list[Block], workdir: pathlib.Path, home: pathlib.Path, timeout: float):
    """Run the blocks in `workdir`; returns (exit status, combined output)."""
    import cli_zygote

    server = any(b.lang == "bash" and cli_zygote.needs_server(b.code) for b in blocks)
    payload = json.dumps([[dataclasses.asdict(b) for b in blocks], cli_zygote.__file__, cli_zygote.ADDRESS,
                          cli_zygote.SERVER_PID, server])
    # A session of its own, so that a timeout ends the page's shell commands and their children too.
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=workdir, env=environment(home), text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return -1, output + f"\n===== the page ran past its {timeout} s"
    return proc.returncode, output
