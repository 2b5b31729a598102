"""What every experiment shares: the result table, the size knob and atomic PNG writing."""

from __future__ import annotations

import dataclasses
import json
import math
import os

from keras_zoo import _validate
from keras_zoo._io import atomic_path

SIZES = ("small", "default")


def check_size(size: str) -> str:
    """`size` selects a preset: ``"small"`` for tests and CI, ``"default"`` for the lecture figures."""
    return _validate.one_of("size", size, SIZES)


def choices(what: str, values, accepted) -> tuple:
    """`values` as a tuple, each one of `accepted`; none at all raises too."""
    values, accepted = tuple(values), tuple(accepted)
    if not values:
        raise ValueError(f"{what}s must name at least one of {list(accepted)}")
    for value in values:
        _validate.one_of(what, value, accepted)
    return values


def sized(name: str, value, preset: dict) -> int:
    """A positive int knob: `value`, or the size preset's when None."""
    return _validate.positive_int(name, value if value is not None else preset[name])


def pinned_classifier_recipe(epochs: int, batch_size: int):
    """The classifier recipe with the experiments' own values pinned (Adam at 2e-3, no early
    stopping): their figures should not move when the registered classifier recipe is retuned."""
    from keras_zoo.recipes import get_recipe

    return get_recipe("classifier").replace(epochs=epochs, early_stopping_patience=None,
                                            learning_rate=2e-3, batch_size=batch_size)


def _format(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    if value is None:
        return ""
    return str(value)


@dataclasses.dataclass
class ResultTable:
    """The result of an experiment: one dict per row, plus notes and the plots it wrote.

    Attributes:
        title: what was measured, in one line.
        columns: the column order for printing (every row has these keys).
        rows: one dict per setting, e.g. ``{"corruption": "random labels", "train_accuracy": 1.0, ...}``.
        notes: free-text remarks (settings used, what was skipped and why).
        plots: paths of the PNG files written (empty when no `plot_dir` was given).
        settings: the resolved settings the experiment ran with.
        series: per-epoch curves behind the plots, e.g. ``{"random labels": [2.3, 2.1, ...]}``.

    Example:
        >>> table = random_labels(size="small")
        >>> table.row("random labels")["train_accuracy"]
        >>> print(table.to_markdown())
    """

    title: str
    columns: list
    rows: list
    notes: list = dataclasses.field(default_factory=list)
    plots: list = dataclasses.field(default_factory=list)
    settings: dict = dataclasses.field(default_factory=dict)
    series: dict = dataclasses.field(default_factory=dict)

    def row(self, key):
        """The row whose first column equals `key`; `KeyError` naming the keys that exist."""
        first = self.columns[0]
        for r in self.rows:
            if r[first] == key:
                return r
        raise KeyError(f"no row {key!r} in {self.title!r}; rows: {[r[first] for r in self.rows]}")

    def column(self, name) -> list:
        """The values of one column, in row order."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; columns: {self.columns}")
        return [r[name] for r in self.rows]

    def to_markdown(self) -> str:
        lines = [f"**{self.title}**", "",
                 "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---" for _ in self.columns) + "|"]
        for r in self.rows:
            lines.append("| " + " | ".join(_format(r.get(c)) for c in self.columns) + " |")
        if self.notes:
            lines.append("")
            lines.extend(f"- {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        # Notebooks render the table as markdown.
        return self.to_markdown()


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend unless a notebook chose one already."""
    import matplotlib

    if "inline" not in matplotlib.get_backend().lower():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves_and_accuracy_bars(curves: dict, curve_label: str, curve_title: str, rows: list, row_key: str,
                             bar_title: str, plot_dir: str, filename: str, chance: float | None = None) -> str:
    """The experiments' two-panel figure: a loss curve per run (log scale) beside train/test
    accuracy bars per row (`row_key` names them; a dashed line marks `chance` when given)."""
    import numpy as np

    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, losses in curves.items():
        ax.plot(range(1, len(losses) + 1), losses, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(curve_label)
    ax.set_yscale("log")
    ax.set_title(curve_title)
    ax.legend(fontsize=8)
    pos = np.arange(len(rows))
    bx.bar(pos - 0.2, [r["train_accuracy"] for r in rows], 0.4, label="train")
    bx.bar(pos + 0.2, [r["test_accuracy"] for r in rows], 0.4, label="test")
    if chance is not None:
        bx.axhline(chance, color="k", ls="--", lw=1, label="chance")
        bx.set_ylim(0, 1.25)  # head room for the legend above the bars
        bx.set_yticks(np.linspace(0, 1, 6))
    else:
        lo = max(0.0, min(r["test_accuracy"] for r in rows) - 0.1)
        bx.set_ylim(lo, 1.0 + 0.25 * (1.0 - lo))  # legend room
    bx.set_xticks(pos)
    bx.set_xticklabels([r[row_key] for r in rows], rotation=25, ha="right", fontsize=8)
    bx.set_ylabel("accuracy")
    bx.set_title(bar_title)
    bx.legend(fontsize=8, ncol=3 if chance is not None else 2, loc="upper center")
    fig.tight_layout()
    return save_figure(fig, plot_dir, filename)


def save_figure(fig, plot_dir: str, filename: str, dpi: int = 90) -> str:
    """Write `fig` to ``plot_dir/filename`` atomically and close it; returns the path."""
    path = os.path.join(os.fspath(plot_dir), filename)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return path
