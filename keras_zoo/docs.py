"""Generated documentation: `catalog.json`, the model pages and the table of shipped checkpoints.

``python -m keras_zoo.docs`` rewrites `keras_zoo/catalog.json` from the registry and, in every page
under `docs/`, the text between a ``<!-- generated: KIND -->`` line and the next
``<!-- generated: end -->`` line, where KIND is

- ``models``: one table of every registered model (name, family, task, parameters, input, the
  held-out figure from `benchmarks/results/` and the command that measured it);
- ``family NAME``: a card per model of that registry family (description, task, parameters, default
  input, recipe, export signatures, builder defaults, shipped checkpoints, measured figure);
- ``weights``: the table of shipped checkpoints from `saved_models/manifest.json`.

Run it after adding a model, a checkpoint or a benchmark result; `tests/test_docs.py` fails when a
page or the catalog has drifted from the registry and the manifest.
"""

from __future__ import annotations

import glob
import json
import os
import re

from keras_zoo import factory, pretrain, weights
from keras_zoo._io import atomic_write_text

BEGIN = re.compile(r"^<!-- generated: (models|weights|family [a-z0-9_]+) -->$", re.M)
END = "<!-- generated: end -->"
NOTE = "<!-- written by `python -m keras_zoo.docs` from the registry; edit the registry, not this -->"


def benchmark_results(folder: str) -> dict:
    """`benchmarks/results/*.json` keyed by model name (a file may hold one result or a list)."""
    results = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        for entry in data if isinstance(data, list) else [data]:
            if "model" in entry and "metric" in entry:
                results.setdefault(entry["model"], entry)
    return results


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} K"


def _fmt_value(value) -> str:
    if not isinstance(value, float):
        return str(value)
    text = f"{value:.4g}"
    return text if any(c in text for c in ".e") else text + ".0"


def _first_load(load) -> float | None:
    """The 1-minute load average from a result's `load` (a list, or `uptime`-style text)."""
    if isinstance(load, (list, tuple)) and load:
        return float(load[0])
    if isinstance(load, str):
        match = re.search(r"\d+(?:\.\d+)?", load.split(":", 1)[-1] if "average" in load else load)
        return float(match.group()) if match else None
    return None


def _fmt_time(result: dict) -> str:
    if "seconds" not in result:
        return ""
    load = _first_load(result.get("load"))
    # Timings taken while the 2 cores were shared say so: a 1-minute load of 12 means ~6x slower.
    note = f" (load {load:.0f})" if load is not None and load >= 3 else ""
    return f"{result['seconds']:.0f} s{note}"


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def model_table(entries: list[dict], results: dict) -> str:
    """Markdown table: name, task, parameters, default input, held-out metric, reproducing command."""
    lines = ["| model | family | task | parameters | default input | held-out metric | train time | reproduce |",
             "|---|---|---|---|---|---|---|---|"]
    for e in entries:
        r = results.get(e["name"])
        metric = f"{r['metric']} {_fmt_value(r['value'])} ({r['data']})" if r else "not measured yet"
        command = f"`{r['command']}`" if r else ""
        name = f"[`{e['name']}`]({family_page(e['family'])}#{e['name']})"
        lines.append(f"| {name} | {e['family']} | {e['task']} | {_fmt_params(e['parameters'])} "
                     f"| {_shape(e['input_shape'])} | {metric} | {_fmt_time(r) if r else ''} "
                     f"| {command} |")
    return "\n".join(lines)


# Which page of docs/models/ describes each registry family. A family missing here fails
# tests/test_docs.py: a new family needs a page (or a place on one) before it ships.
FAMILY_PAGES = {
    "mlp": "classifiers.md", "cnn": "classifiers.md", "resnet": "classifiers.md",
    "applications": "applications.md",
    "autoencoder": "autoencoders.md", "unet": "unet.md",
    "vae": "generative.md", "gan": "generative.md",
    "simclr": "self-supervised.md", "rotation": "self-supervised.md",
    "iic": "self-supervised.md", "forecaster": "self-supervised.md",
    "dann": "domain-adaptation.md",
}


def family_page(family: str) -> str:
    """The page of docs/models/ that holds a family's model cards (relative to docs/models/)."""
    return FAMILY_PAGES.get(family, "index.md")


def model_cards(family: str, entries: list[dict], results: dict, checkpoints: list[dict]) -> str:
    """One card per model of `family`: what the registry, the manifest and the benchmarks know."""
    cards = []
    models = [e for e in entries if e["family"] == family]
    if not models:
        raise ValueError(f"no registered model has family {family!r}; families: "
                         f"{sorted({e['family'] for e in entries})}")
    for e in models:
        rows = [("task", e["task"]),
                ("parameters", f"{_fmt_params(e['parameters'])} at the default input"
                 + (f" and {e['num_classes']} classes" if e.get("num_classes") else "")),
                ("default input", _shape(e["input_shape"])),
                ("recipe", f"`{e['recipe']}`"),
                ("export signatures", ", ".join(f"`{s}`" for s in e["signatures"]))]
        if e.get("defaults"):
            rows.append(("builder defaults", ", ".join(f"`{k}={v!r}`" for k, v in e["defaults"].items())))
        tags = [c for c in checkpoints if c["name"] == e["name"]]
        if tags:
            rows.append(("shipped checkpoints", ", ".join(
                f"[`{c['name']}:{c['tag']}`](../pretrained.md)" + (" (default)" if c.get("default") else "")
                for c in tags)))
        elif e.get("pretrained_weights"):
            rows.append(("pretrained weights", ", ".join(f"`{w['tag']}`" for w in e["pretrained_weights"])))
        r = results.get(e["name"])
        if r:
            time = _fmt_time(r).replace(" s", " s of training", 1)
            rows.append(("measured", f"{r['metric']} {_fmt_value(r['value'])} on {r['data']}"
                         + (f", {time}" if time else "") + f": `{r['command']}`"))
        table = "\n".join(["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])
        cards.append(f"### `{e['name']}` {{#{e['name']}}}\n\n{e['description']}\n\n{table}")
    return "\n\n".join(cards)


def render_page(text: str, entries: list[dict], results: dict, checkpoints: list[dict]) -> str:
    """A page with every generated section rewritten (text outside the markers is kept as is)."""
    out, pos = [], 0
    for match in BEGIN.finditer(text):
        if match.start() < pos:
            continue
        end = text.find(END, match.end())
        if end < 0:
            raise ValueError(f"{match.group(0)} has no {END} after it")
        kind = match.group(1)
        if kind == "models":
            body = model_table(entries, results)
        elif kind == "weights":
            body = pretrain.markdown_table()
        else:
            body = model_cards(kind.split()[1], entries, results, checkpoints)
        out += [text[pos:match.end()], "\n", NOTE, "\n\n", body, "\n\n"]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def generated_pages(docs_dir: str, entries: list[dict] | None = None,
                    results_dir: str | None = None) -> dict[str, tuple[str, str]]:
    """{path: (text on disk, text as generated now)} for every page of docs_dir with markers."""
    repo = os.path.dirname(os.path.abspath(docs_dir))
    entries = factory.read_catalog() if entries is None else entries
    results = benchmark_results(results_dir or os.path.join(repo, "benchmarks", "results"))
    checkpoints = weights.entries()
    pages = {}
    for path in sorted(glob.glob(os.path.join(docs_dir, "**", "*.md"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if BEGIN.search(text):
            pages[path] = (text, render_page(text, entries, results, checkpoints))
    return pages


def main(repo: str | None = None) -> None:
    """Rewrite catalog.json from the live registry, then every generated section under docs/."""
    repo = repo or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    entries = factory.catalog_entries()
    atomic_write_text(factory.CATALOG_PATH, json.dumps(entries, indent=1) + "\n")
    print(f"wrote {factory.CATALOG_PATH} ({len(entries)} models)")
    entries = json.loads(json.dumps(entries))  # as read back from the file: tuples become lists
    for path, (old, new) in generated_pages(os.path.join(repo, "docs"), entries).items():
        if new != old:
            atomic_write_text(path, new)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
