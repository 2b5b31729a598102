"""The documentation site builds with --strict, and every public function and class is in it.

`mkdocs build --strict` fails on a broken link, a page missing from the nav's files, an anchor that
does not exist and a cross-reference mkdocstrings cannot resolve. On top of that this checks that
the API reference covers the package: every public module is rendered, and every public function
and class has a docstring and an anchor of its own in the built site.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The command line's handlers (`cmd_*`) are documented by `keras-zoo --help` and the Getting started
# page, not as Python API.
NOT_IN_API = {"keras_zoo.cli"}

griffe = pytest.importorskip("griffe", reason="the docs extra (mkdocstrings[python]) is not installed")


def _public_objects():
    """Modules, and module-level functions and classes, whose path has no `_`-prefixed part."""
    package = griffe.load("keras_zoo", search_paths=[str(ROOT)])
    modules, objects = [], []

    def walk(module):
        if module.path in NOT_IN_API:
            return
        modules.append(module)
        for name, member in module.members.items():
            if name.startswith("_") or member.is_alias:
                continue
            if member.is_module:
                walk(member)
            elif member.is_function or member.is_class:
                objects.append(member)

    walk(package)
    return modules, objects


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return out


def test_every_public_function_and_class_has_a_docstring():
    _, objects = _public_objects()
    missing = sorted(o.path for o in objects if not (o.docstring and o.docstring.value.strip()))
    assert not missing, f"public functions and classes without a docstring: {missing}"


def test_every_public_module_is_in_the_api_reference():
    modules, _ = _public_objects()
    rendered = set()
    for page in (ROOT / "docs" / "api").glob("*.md"):
        rendered |= set(re.findall(r"^::: (\S+)\s*$", page.read_text(encoding="utf-8"), re.M))
    missing = sorted(m.path for m in modules if m.path not in rendered and m.path != "keras_zoo")
    assert not missing, f"modules with no `::: module` in docs/api/: {missing}"


def test_every_top_level_name_is_listed_on_the_api_index():
    import keras_zoo

    index = (ROOT / "docs" / "api" / "index.md").read_text(encoding="utf-8")
    missing = [n for n in keras_zoo.__all__ if n != "__version__" and f"[`{n}`]" not in index]
    assert not missing, f"names of keras_zoo.__all__ missing from docs/api/index.md: {missing}"


def test_the_site_builds_strict_with_an_anchor_for_every_public_object(site):
    html = "\n".join(p.read_text(encoding="utf-8") for p in (site / "api").rglob("*.html"))
    anchors = set(re.findall(r'id="(keras_zoo\.[\w.]+)"', html))
    _, objects = _public_objects()
    missing = sorted(o.path for o in objects if o.path not in anchors)
    assert not missing, f"public objects with no entry in the built API reference: {missing}"
    for page in ["index.html", "getting-started/index.html", "models/classifiers/index.html",
                 "pretrained/index.html", "performance/index.html"]:
        assert (site / page).exists(), page
