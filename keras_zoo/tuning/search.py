"""`tune()`: a KerasTuner search over a registered model's space, resumable and distributable.

The search directory holds KerasTuner's own state (``oracle.json``, ``trial_<id>/trial.json``, the
tuner files) plus, per trial, the `keras_zoo.train` run directory (``trial_<id>/run``) and, when the
search ends, ``summary.json``. Running the same call again resumes: finished trials are kept, the
interrupted one is run again (its training resumes from its last epoch backup).

The first trial of every search is the default configuration (the registry's and recipe's values),
so the table always holds the baseline and the search's best is never worse on validation.

Distributed tuning uses KerasTuner's chief/worker mode unchanged: start the same `tune` call (or
``keras-zoo tune`` command) in several processes with ``KERASTUNER_ORACLE_IP``,
``KERASTUNER_ORACLE_PORT`` and ``KERASTUNER_TUNER_ID`` (``chief`` for the one that holds the oracle,
``tuner0``, ``tuner1``... for the workers) set. The chief hands out trials and records every result;
workers train. On one machine they share the search directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys

from keras_zoo import _validate, distribute, factory, registry
from keras_zoo._io import atomic_write_text
from keras_zoo.recipes import get_recipe
from keras_zoo import presets as presets_module
from keras_zoo.tuning import space as space_module

TUNERS = ("random", "bayesian", "hyperband")


@dataclasses.dataclass
class TuneResult:
    """What `tune` returns.

    Attributes:
        model: the registry name that was tuned.
        objective, direction: the metric the search optimised (a validation metric) and its sense.
        best_hyperparameters: values of the best trial (architecture and recipe knobs).
        best_model_overrides, best_recipe_changes: the same, split into builder arguments and
            `Recipe` fields (``augment_strength`` becomes ``augment``).
        best_score: the best trial's objective; `default_score` the default configuration's.
        best_test, default_test: held-out (test split) metrics of the best and the default trial.
        held_out_metric: the test metric compared in `summary` (the objective without ``val_``).
        trials: one row per trial: ``trial_id``, ``status``, ``score``, ``values``, ``test``,
            ``default`` (is it the default configuration) and ``message`` (why it failed).
        directory: the search directory (KerasTuner state, trial runs, ``summary.json``).
        preset_path: the preset file written for ``save_preset=``.
        role: ``"single"``, ``"chief"`` or ``"worker"``; a worker's `trials` are those it ran and it
            has no best (the chief holds the results).
    """

    model: str
    objective: str
    direction: str
    best_hyperparameters: dict | None
    best_model_overrides: dict | None
    best_recipe_changes: dict | None
    best_trial_id: str | None
    best_score: float | None
    best_test: dict
    default_trial_id: str | None
    default_score: float | None
    default_test: dict
    held_out_metric: str
    trials: list
    directory: str
    preset_path: str | None = None
    role: str = "single"

    @property
    def held_out(self) -> tuple:
        """(best trial's, default configuration's) held-out value of `held_out_metric`."""
        return (self.best_test.get(self.held_out_metric), self.default_test.get(self.held_out_metric))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def table(self) -> str:
        """The trials as a text table, best first (failed trials last, with their error)."""
        if not self.trials:
            return "no trials"
        knobs = list(dict.fromkeys(k for t in self.trials for k in t["values"]))
        test_key = self.held_out_metric
        header = ["trial", "status", self.objective, f"test {test_key}", *knobs]
        rows = []
        for t in _sorted_trials(self.trials, self.direction):
            tag = t["trial_id"] + (" (default)" if t["default"] else "")
            rows.append([tag, t["status"].lower(), _fmt(t["score"]), _fmt(t["test"].get(test_key)),
                         *(_fmt(t["values"].get(k)) for k in knobs)])
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
        for t in self.trials:
            if t["message"]:
                lines.append(f"trial {t['trial_id']} failed: {t['message']}")
        return "\n".join(lines)

    def summary(self) -> str:
        if self.role == "worker":
            return f"worker ran trials {', '.join(t['trial_id'] for t in self.trials) or 'none'}"
        if self.best_trial_id is None:
            return "no trial completed"
        text = (f"best trial {self.best_trial_id}: {self.objective} {_fmt(self.best_score)} "
                f"(default configuration, trial {self.default_trial_id}: {_fmt(self.default_score)})")
        for key in dict.fromkeys([self.held_out_metric, *self.best_test, *self.default_test]):
            text += (f"\nheld-out (test split) {key}: best {_fmt(self.best_test.get(key))}, "
                     f"default {_fmt(self.default_test.get(key))}")
        if self.preset_path:
            text += f"\npreset saved: {self.preset_path}"
        return text


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _sorted_trials(trials, direction):
    def key(t):
        ok = t["status"] == "COMPLETED" and t["score"] is not None and math.isfinite(t["score"])
        score = t["score"] if ok else 0.0
        return (not ok, -score if direction == "max" else score, t["trial_id"])

    return sorted(trials, key=key)


# --------------------------------------------------------------------------- checks


def reported_metrics(name: str, recipe) -> list[str]:
    """Names a training run of `name` with `recipe` reports, training and validation (``val_``)."""
    if recipe.loss is not None:
        from keras_zoo.recipes import objectives

        base = ["loss", *(objectives.build_metric(m).name for m in recipe.metrics)]
    else:
        # Models with their own train_step report their metric trackers.
        model = factory.create_model(name)
        base = [m.name for m in model.metrics] or ["loss"]
    base = list(dict.fromkeys(base))
    return base + [f"val_{m}" for m in base]


def resolve_objective(objective, name: str, recipe) -> tuple[str, str]:
    """``(metric, direction)``: the recipe's monitor by default; a name the model does not report
    raises `ValueError` listing those it does. ``"name:min"``/``"name:max"`` sets the direction."""
    reported = reported_metrics(name, recipe)
    if objective is None:
        metric, direction = recipe.monitor, recipe.monitor_mode
    elif hasattr(objective, "name") and hasattr(objective, "direction"):  # keras_tuner.Objective
        metric, direction = objective.name, objective.direction
    elif isinstance(objective, str):
        metric, _, direction = objective.partition(":")
        direction = direction or None
    else:
        raise ValueError(f"objective must be a metric name or keras_tuner.Objective, got {objective!r}")
    if metric not in reported:
        raise ValueError(f"objective {metric!r} is not reported by {name!r} with recipe "
                         f"{recipe.name!r}; it reports {reported}")
    if direction is None:
        bare = metric[4:] if metric.startswith("val_") else metric
        monitor = recipe.monitor[4:] if recipe.monitor.startswith("val_") else recipe.monitor
        if bare == monitor:
            direction = recipe.monitor_mode
        elif "loss" in bare or bare in ("mse", "mae", "rmse", "error"):
            direction = "min"
        elif "accuracy" in bare or bare in ("auc", "precision", "recall", "iou", "mean_iou", "psnr", "ssim"):
            direction = "max"
        else:
            raise ValueError(f"cannot tell whether {metric!r} should go up or down: pass "
                             f"objective='{metric}:max' or '{metric}:min'")
    if direction not in ("min", "max"):
        raise ValueError(f"objective direction must be 'min' or 'max', got {direction!r}")
    return metric, direction


def _check_preset_name(name: str, tuned: str) -> None:
    presets_module.check_name(name)
    if name in factory.list_models(presets=False):
        raise ValueError(f"preset name {name!r} is the name of a built-in model; choose another "
                         f"(e.g. '{tuned}_tuned')")


def _slug(value) -> str:
    text = os.path.basename(os.path.normpath(str(value))) if isinstance(value, (str, os.PathLike)) else "data"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "data"


# --------------------------------------------------------------------------- tuners


def _defaults_first(oracle_cls):
    """An oracle class whose first suggestion is the default configuration.

    Every KerasTuner oracle draws its random (initial) points from `_random_values`; answering the
    defaults there once makes trial 0 the baseline for random search, Bayesian optimisation and
    Hyperband alike. Whether the defaults ran is read from the oracle's own record of tried values,
    so it survives resumption and holds on the chief in distributed tuning.
    """

    class Oracle(oracle_cls):
        def _random_values(self):
            defaults = {hp.name: hp.default for hp in self.hyperparameters.space
                        if not hp.name.startswith("tuner/")}
            if defaults and not self._duplicate(defaults):
                return defaults
            return super()._random_values()

    Oracle.__name__ = Oracle.__qualname__ = f"DefaultsFirst{oracle_cls.__name__}"
    return Oracle


def _tuner_classes():
    import keras_tuner as kt
    from keras_tuner.src.engine import trial as trial_module

    class Mixin:
        """Per-trial run directory, and a line per failed trial so a search never fails silently."""

        ran: list

        def run_trial(self, trial, *args, **kwargs):
            kwargs["run_dir"] = os.path.join(self.get_trial_dir(trial.trial_id), "run")
            return super().run_trial(trial, *args, **kwargs)

        def search(self, *fit_args, **fit_kwargs):
            from keras_tuner.src.distribute import utils as dist_utils

            if not dist_utils.is_chief_oracle():
                return super().search(*fit_args, **fit_kwargs)
            # The chief serves KerasTuner's own oracle service; only the wait for the last worker
            # differs: KerasTuner polls every 20 s once the search is over, this every 0.5 s.
            self.oracle.verbose = fit_kwargs.get("verbose", 1)
            self.save()
            _serve_oracle(self.oracle)

        def on_trial_end(self, trial):
            self.__dict__.setdefault("ran", []).append(trial.trial_id)
            super().on_trial_end(trial)
            if trial.status != trial_module.TrialStatus.COMPLETED:
                print(f"trial {trial.trial_id} failed: {_last_line(trial.message)}", file=sys.stderr)

    class Tuner(Mixin, kt.Tuner):
        pass

    class Hyperband(Mixin, kt.Hyperband):
        def __init__(self, oracle, **kwargs):
            # kt.Hyperband.__init__ only builds its own oracle; ours answers the defaults first.
            kt.Tuner.__init__(self, oracle=oracle, **kwargs)

    return Tuner, Hyperband


def _serve_oracle(oracle, poll_s: float = 0.5) -> None:
    """KerasTuner's `oracle_chief.start_server`, returning within `poll_s` of the last result."""
    import time
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    servicer = oracle_chief.OracleServicer(oracle)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    if not server.add_insecure_port(address):
        raise RuntimeError(f"the chief cannot listen on {address} (KERASTUNER_ORACLE_IP/PORT)")
    server.start()
    try:
        # Done when the oracle has said "stop" to a worker, no trial is running and every worker
        # has been told to stop (oracle.tuner_ids empties as they ask for more).
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll_s)
    finally:
        server.stop(grace=1.0)


def _last_line(message) -> str:
    lines = [l.strip() for l in (message or "").strip().splitlines() if l.strip()]
    return lines[-1] if lines else "unknown error"


def _make_tuner(kind, hypermodel, objective, direction, max_trials, epochs, seed, directory,
                overwrite, max_consecutive_failed_trials, hyperband_factor):
    import keras_tuner as kt

    Tuner, Hyperband = _tuner_classes()
    common = dict(objective=kt.Objective(objective, direction),
                  # KerasTuner reads seed=0 as "no seed"; shift so every int is a real seed.
                  seed=seed + 1, max_consecutive_failed_trials=max_consecutive_failed_trials)
    if kind == "random":
        oracle = _defaults_first(kt.oracles.RandomSearchOracle)(max_trials=max_trials, **common)
    elif kind == "bayesian":
        oracle = _defaults_first(kt.oracles.BayesianOptimizationOracle)(max_trials=max_trials, **common)
    else:
        oracle = _defaults_first(kt.oracles.HyperbandOracle)(max_epochs=epochs, factor=hyperband_factor,
                                                             **common)
        oracle.max_trials = max_trials
    cls = Hyperband if kind == "hyperband" else Tuner
    directory = os.path.abspath(directory)
    return cls(oracle=oracle, hypermodel=hypermodel, directory=os.path.dirname(directory),
               project_name=os.path.basename(directory), overwrite=overwrite)


# --------------------------------------------------------------------------- tune


def tune(name: str, data, tuner: str = "random", max_trials: int = 10, objective=None,
         directory: str | None = None, *, epochs: int | None = None, seed: int = 0,
         space: dict | None = None, recipe=None, save_preset: str | None = None,
         overwrite: bool = False, max_consecutive_failed_trials: int = 3, hyperband_factor: int = 3,
         callbacks=(), data_options: dict | None = None, verbose: int = 1, strategy=None) -> TuneResult:
    """Search the hyperparameters of a registered model on a data source with KerasTuner.

    Args:
        name: registry name (or preset) to tune.
        data: a source for `keras_zoo.data.load_splits` (``"digits"``, a TFDS name, a folder, arrays).
        tuner: ``"random"``, ``"bayesian"`` or ``"hyperband"``.
        max_trials: how many configurations to train at most (>= 1); the first is the default one.
        objective: a validation metric the model reports (``"val_accuracy"``), optionally with
            ``":max"``/``":min"``; defaults to the recipe's monitor and direction.
        directory: the search directory (default ``runs/tune-<name>-<data>``); the same directory
            resumes an interrupted search.
        epochs: epochs per trial (default: the recipe's); Hyperband's maximum.
        seed: seeds the split, the data order, the initial weights (the same for every trial) and
            the search.
        space: changes to the search space, ``{knob: Int|Float|Choice|None}`` (see `search_space`).
        recipe: recipe name or `Recipe` (default: the model's).
        save_preset: store the best trial as a preset of this name (see `keras_zoo.create_model`).
        overwrite: start afresh, deleting the state in `directory`.
        max_consecutive_failed_trials: stop after this many failed trials in a row.
        hyperband_factor: Hyperband's reduction factor.
        callbacks: extra Keras callbacks for every trial.
        data_options: extra `load_splits` arguments (``image_size``, ``color_mode`` ...).
        verbose: 0 silent, 1 one report per trial, 2 also per epoch.
        strategy: a `tf.distribute` strategy or its name (see `keras_zoo.train`) that every trial
            builds and trains under (``"mirrored"``: a trial spans this machine's GPUs).

    Returns:
        A `TuneResult`: best hyperparameters and score, the default configuration's score, both
        on the held-out split, and the table of trials.

    Example:
        >>> result = keras_zoo.tune("cnn_small", "digits", max_trials=6, epochs=10)
        >>> print(result.table())
        >>> result.best_hyperparameters
    """
    if tuner not in TUNERS:
        raise ValueError(f"unknown tuner {tuner!r}; accepted: {list(TUNERS)}")
    distribute.check_strategy(strategy)
    max_trials = _validate.positive_int("max_trials", max_trials)
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be an int >= 1 or None, got {epochs!r}")
    max_consecutive_failed_trials = _validate.positive_int("max_consecutive_failed_trials",
                                                           max_consecutive_failed_trials)
    spec = factory.get_spec(name)
    base_recipe = get_recipe(recipe if recipe is not None else spec.recipe)
    params = space_module.search_space(name, base_recipe, space)
    metric, direction = resolve_objective(objective, name, base_recipe)
    if save_preset is not None:
        _check_preset_name(save_preset, name)
    directory = directory or os.path.join("runs", f"tune-{name}-{_slug(data)}")

    from keras_tuner.src.distribute import utils as dist_utils

    from keras_zoo.tuning.hypermodel import ZooHyperModel

    role = ("chief" if dist_utils.is_chief_oracle() else "worker") if dist_utils.has_chief_oracle() \
        else "single"
    if overwrite and role != "single":
        # Every process of a distributed search shares the directory; one deleting it while the
        # others write would lose trials.
        raise ValueError("overwrite=True is refused in distributed tuning (KERASTUNER_ORACLE_IP is "
                         f"set): point every process at a new directory instead of {directory!r}")
    hypermodel = ZooHyperModel(name, data, recipe=base_recipe, space=space, objective=metric,
                               direction=direction, epochs=epochs, seed=seed,
                               data_options=data_options, verbose=2 if verbose >= 2 else 0,
                               strategy=strategy)
    kt_tuner = _make_tuner(tuner, hypermodel, metric, direction, max_trials,
                           epochs or base_recipe.epochs, seed, directory, overwrite,
                           max_consecutive_failed_trials, hyperband_factor)
    if verbose and role != "worker":
        print(f"tuning {name} on {data if isinstance(data, (str, os.PathLike)) else 'the given data'}: "
              f"{tuner} search, up to {max_trials} trials, objective {metric} ({direction}); "
              f"state in {os.path.abspath(directory)} (rerun to resume)")
        for p in params.values():
            print(f"  {p.name:<18} {p.describe():<36} default {p.default}")
    kt_tuner.search(callbacks=list(callbacks), verbose=1 if verbose else 0)

    if role == "worker":
        ran = [{"trial_id": t, "status": "RAN", "score": None, "values": {}, "test": {},
                "default": False, "message": ""} for t in getattr(kt_tuner, "ran", [])]
        result = TuneResult(name, metric, direction, None, None, None, None, None, {}, None, None, {},
                            _held_out_metric(metric), ran, os.path.abspath(directory), role=role)
        if verbose:
            print(f"{os.environ.get('KERASTUNER_TUNER_ID')}: {result.summary()}; the chief holds the results")
        return result

    result = _collect(kt_tuner.oracle, name, params, base_recipe, metric, direction,
                      os.path.abspath(directory), role)
    if save_preset is not None:
        if result.best_trial_id is None:
            raise RuntimeError(f"no trial completed, so no preset {save_preset!r} was saved; "
                               f"see the failed trials:\n{result.table()}")
        result.preset_path = _save_preset(save_preset, name, spec, result, data, tuner, max_trials,
                                          epochs, hypermodel)
    atomic_write_text(os.path.join(directory, "summary.json"),
                      json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    if verbose:
        print(result.table())
        print(result.summary())
    return result


def _held_out_metric(objective: str) -> str:
    return objective[4:] if objective.startswith("val_") else objective


def _collect(oracle, name, params, recipe, metric, direction, directory, role) -> TuneResult:
    defaults = space_module.defaults_of(params)
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        values = {k: p.decode(trial.hyperparameters.values[k]) for k, p in params.items()
                  if k in trial.hyperparameters.values}
        test = {k[5:]: trial.metrics.get_last_value(k) for k in trial.metrics.metrics
                if k.startswith("test_")}
        score = trial.score if trial.status == "COMPLETED" else None
        rows.append({"trial_id": trial_id, "status": trial.status,
                     "score": None if score is None else float(score), "values": values,
                     "test": {k: float(v) for k, v in test.items() if v is not None},
                     "default": values == defaults,
                     "message": "" if trial.status == "COMPLETED" else _last_line(trial.message)})
    ok = [r for r in rows if r["status"] == "COMPLETED" and r["score"] is not None
          and math.isfinite(r["score"])]
    best = _sorted_trials(ok, direction)[0] if ok else None
    default = next((r for r in rows if r["default"] and r["status"] == "COMPLETED"), None)
    overrides = changes = None
    if best is not None:
        overrides, changes = space_module.split_values(params, best["values"], recipe)
    return TuneResult(
        model=name, objective=metric, direction=direction,
        best_hyperparameters=best["values"] if best else None,
        best_model_overrides=overrides, best_recipe_changes=changes,
        best_trial_id=best["trial_id"] if best else None,
        best_score=best["score"] if best else None, best_test=best["test"] if best else {},
        default_trial_id=default["trial_id"] if default else None,
        default_score=default["score"] if default else None,
        default_test=default["test"] if default else {},
        held_out_metric=_held_out_metric(metric), trials=rows, directory=directory, role=role)


def _save_preset(preset, name, spec, result, data, tuner, max_trials, epochs, hypermodel) -> str:
    import keras

    from keras_zoo.training import model_arguments

    # A preset of a preset stores the root model with both sets of changes folded together.
    root = spec.base or spec.name
    overrides, changes = dict(result.best_model_overrides), dict(result.best_recipe_changes)
    if spec.base:
        record = presets_module.read_preset(spec.name)
        overrides = {**record["model_overrides"], **overrides}
        changes = {**record["recipe"], **changes}
    changes = {k: (list(v) if isinstance(v, tuple) else v) for k, v in changes.items()}
    info = hypermodel.splits(hypermodel.recipe).info
    arguments = model_arguments(spec, info, hypermodel.recipe, result.best_model_overrides)
    num_classes = arguments["num_classes"] or spec.num_classes
    model = factory.create_model(name, **arguments)
    parameters = int(model.count_params())
    del model
    keras.backend.clear_session()
    return presets_module.write_preset(
        preset, base_model=root, model_overrides=overrides, recipe_changes=changes,
        objective=result.objective, direction=result.direction, score=result.best_score,
        data=str(data) if isinstance(data, (str, os.PathLike)) else info.name,
        family=spec.family, task=spec.task, input_shape=info.input_shape,
        num_classes=num_classes if spec.accepts_num_classes else None, parameters=parameters,
        test_metrics=result.best_test,
        default={"score": result.default_score, "test": result.default_test},
        search={"tuner": tuner, "max_trials": max_trials, "epochs_per_trial": epochs,
                "trials": len(result.trials), "best_trial": result.best_trial_id,
                "directory": result.directory})
