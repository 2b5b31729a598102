"""Generated files stay in step with the registry: catalog.json, the generated docs, CI's commands."""

import json
import pathlib
import re

import pytest

from keras_zoo import docs, factory

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Pages the README links to that are written alongside this one and arrive when merged. A page
# listed here that exists fails the link test below: take it out of the set then.
@pytest.fixture(scope="module")
def live_catalog():
    """The catalog as the registry makes it now, but for the parameter counts: those are taken from
    catalog.json here and checked against each model built at its default shape by
    tests/test_models.py (which builds every model anyway; building them all again here took
    a minute and a half of the suite)."""
    entries = []
    for name in factory.list_models(presets=False):
        info = factory.model_info(name)
        info["defaults"] = json.loads(json.dumps(info["defaults"], default=list))
        entries.append(info)
    return entries


def test_catalog_matches_the_live_registry(live_catalog):
    assert factory.read_catalog() == json.loads(json.dumps(live_catalog)), (
        "catalog.json is stale: run `python -m keras_zoo.docs`")


def test_generated_docs_match_the_registry_and_manifest(live_catalog):
    entries = json.loads(json.dumps(live_catalog))
    pages = docs.generated_pages(str(ROOT / "docs"), entries)
    stale = sorted(str(pathlib.Path(p).relative_to(ROOT)) for p, (old, new) in pages.items() if old != new)
    assert not stale, f"generated sections are stale in {stale}: run `python -m keras_zoo.docs`"
    text = "\n".join(new for _, new in pages.values())
    for name in factory.list_models():
        assert f"### `{name}` {{#{name}}}" in text, f"{name} has no model card"
        assert f"[`{name}`](" in text, f"{name} is not in the models table"
    for entry in __import__("keras_zoo.weights", fromlist=["entries"]).entries():
        assert f"| `{entry['name']}:{entry['tag']}`" in text


def test_every_family_has_a_page_that_holds_its_cards(live_catalog):
    families = {e["family"] for e in live_catalog}
    assert families <= set(docs.FAMILY_PAGES), (
        f"families without a page in keras_zoo.docs.FAMILY_PAGES: {sorted(families - set(docs.FAMILY_PAGES))}")
    for family in families:
        page = (ROOT / "docs" / "models" / docs.FAMILY_PAGES[family]).read_text(encoding="utf-8")
        assert f"<!-- generated: family {family} -->" in page, f"{family} has no cards on its page"


def test_render_page_rewrites_only_between_markers_and_refuses_an_unknown_family(live_catalog):
    entries = json.loads(json.dumps(live_catalog))
    text = "intro\n<!-- generated: family vae -->\nold text\n<!-- generated: end -->\noutro\n"
    out = docs.render_page(text, entries, {}, [])
    assert out.startswith("intro\n<!-- generated: family vae -->\n") and out.endswith(
        "<!-- generated: end -->\noutro\n")
    assert "old text" not in out and "### `vae` {#vae}" in out and "`wgan_gp`" not in out
    with pytest.raises(ValueError, match="no registered model has family 'vea'"):
        docs.render_page(text.replace("vae", "vea"), entries, {}, [])
    with pytest.raises(ValueError, match="has no <!-- generated: end -->"):
        docs.render_page("<!-- generated: models -->\n", entries, {}, [])


def test_ci_runs_the_readme_quick_start_commands_verbatim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [l for l in quick.splitlines() if l.strip() and not l.startswith("#")]
    assert len(commands) == 2
    for command in commands:
        assert command in ci
    assert re.search(r"pytest", commands[1])


def test_readme_is_a_landing_page_whose_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    prose = re.sub(r"^```.*?^```", "", readme, flags=re.M | re.S)
    targets = set(re.findall(r"\]\(((?!https?:|#)[^)#\s]+)", prose))
    assert targets, "the README links into the docs"
    missing = sorted(t for t in targets if not (ROOT / t).exists())
    assert not missing, f"README links to files that do not exist: {missing}"
