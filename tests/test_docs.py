"""Generated files stay in step with the registry: catalog.json, the README table, CI's commands."""

import json
import pathlib
import re

import pytest

from keras_zoo import docs, registry, weights

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def live_catalog():
    """The registry's catalog, built once: it builds every model at its default input size."""
    return registry.catalog_entries()


def test_catalog_matches_the_live_registry(live_catalog):
    assert registry.read_catalog() == json.loads(json.dumps(live_catalog)), (
        "catalog.json is stale: run `python -m keras_zoo.docs`")


def test_readme_model_table_matches_the_registry(live_catalog):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = docs.model_table(live_catalog,
                             docs.benchmark_results(str(ROOT / "benchmarks" / "results")))
    assert docs.render_readme(readme, table, weights.markdown_table()) == readme, (
        "README model or weights table is stale: run `python -m keras_zoo.docs`")
    for name in registry.list_models():
        assert f"| `{name}` |" in readme


def test_ci_runs_the_readme_quick_start_commands_verbatim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [l for l in quick.splitlines() if l.strip() and not l.startswith("#")]
    assert len(commands) == 2
    for command in commands:
        assert command in ci
    assert re.search(r"pytest", commands[1])
