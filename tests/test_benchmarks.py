"""benchmarks/ has one door: run.py runs or dispatches everything, nothing imports in a circle,
every figure's command is a run.py command, and the suite's own checks can fail."""

from __future__ import annotations

import ast
import json
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import run  # noqa: E402


def _local_imports(path: pathlib.Path, local: set) -> set:
    """Names of benchmarks/ modules that `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found & local


def _cycles(graph: dict) -> list:
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_nothing_in_benchmarks_imports_in_a_circle():
    files = {p.stem: p for p in BENCH.glob("*.py")}
    graph = {name: _local_imports(path, set(files)) for name, path in files.items()}
    assert not _cycles(graph), f"import circles in benchmarks/: {_cycles(graph)}"
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b", "a"]]  # the check can see one


def test_every_script_is_run_py_a_module_it_uses_or_a_suite_it_dispatches():
    source = (BENCH / "run.py").read_text(encoding="utf-8")
    used = {p.stem for p in BENCH.glob("*.py")
            if p.stem != "run" and (f'"{p.name}"' in source or p.stem in _local_imports(BENCH / "run.py", {p.stem}))}
    # a module run.py uses may itself use others (handwritten.py reads folders through folders.py)
    for name in list(used):
        used |= _local_imports(BENCH / f"{name}.py", {p.stem for p in BENCH.glob("*.py")})
    orphans = sorted(p.name for p in BENCH.glob("*.py") if p.stem not in used | {"run"})
    assert not orphans, f"scripts in benchmarks/ that run.py neither runs nor dispatches: {orphans}"
    for name, path in run.suites().items():
        tree = ast.parse(pathlib.Path(path).read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"suite {name} has no docstring for --list"
        assert any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body), name


def _commands(text: str) -> list:
    return re.findall(r"python (benchmarks/[\w/.-]+\.py)((?: [^`|\n]*)?)", text)


# The hand-written scripts P1 (grayscale and colour) runs beside the zoo's command.
REFERENCES = {"benchmarks/handwritten.py", "benchmarks/handwritten_color.py"}


def test_every_benchmark_command_in_the_docs_and_results_is_a_run_py_command():
    texts = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
             for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]}
    for p in sorted((BENCH / "results").glob("*.json")):
        texts[str(p.relative_to(ROOT))] = json.dumps(json.loads(p.read_text(encoding="utf-8")).get("command", ""))
    known = set(run.BENCHMARKS) | set(run.suites())
    bad = []
    for where, text in texts.items():
        for script, rest in _commands(text):
            if script in REFERENCES and "vs" in text:  # P1's record of its reference
                continue
            only = re.search(r"--only ([\w,]+)", rest)
            names = only.group(1).strip("`\"").split(",") if only else []
            if script != "benchmarks/run.py" or any(n.upper() not in known and n not in known for n in names):
                bad.append(f"{where}: python {script}{rest}")
    assert not bad, "benchmark commands that are not `python benchmarks/run.py [--only KNOWN]`:\n" + "\n".join(bad)


def test_run_py_dispatches_a_suite_with_its_own_options():
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--only", "random_labels", "--", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage: random_labels.py" in proc.stdout, proc.stdout + proc.stderr
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--only", "P3", "--", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "options after -- go to one suite" in proc.stderr


def test_p4_budget_check_judges_the_cache_auto_chose():
    mib = 2 ** 20
    assert run.auto_cache_met("file", 69 * mib, 23 * mib) and run.auto_cache_met("none", 69 * mib, 23 * mib)
    assert not run.auto_cache_met("memory", 69 * mib, 23 * mib)  # over budget, cached in memory anyway
    assert run.auto_cache_met("memory", 7 * mib, 23 * mib)
    assert not run.auto_cache_met("file", 7 * mib, 23 * mib)  # fits, yet decoded to disk


def test_p1_row_is_not_met_when_a_round_missed_the_target():
    reached = {"reached": {"epoch": 1, "seconds": 5.0}}
    result = {"time_to_target_ratio": {"median": 0.4, "min": 0.3, "n": 2},
              "zoo_final_accuracy": {"median": 0.99, "min": 0.99, "n": 3},
              "hand_final_accuracy": {"median": 0.988, "min": 0.987, "n": 3},
              "runs": {"cnn_fast": [reached] * 3, "handwritten": [reached, reached, {"reached": None}]}}
    row = run.table_rows({"P1": result})[0]
    assert row[0] == "P1" and row[-1] is False
    result["runs"]["handwritten"][2] = reached
    assert run.table_rows({"P1": result})[0][-1] is True
    assert run.table_rows({"P1": {**result, "all_reached": False}})[0][-1] is False
