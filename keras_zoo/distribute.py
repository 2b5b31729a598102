"""`tf.distribute` for `train`, `finetune` and tuning: one place that turns ``strategy=`` into a strategy.

``"mirrored"`` is `tf.distribute.MirroredStrategy` over every local GPU (or the CPU when there is
none); ``"multi_worker"`` is `tf.distribute.MultiWorkerMirroredStrategy` over the cluster that the
``TF_CONFIG`` environment variable describes; a `tf.distribute.Strategy` object is used as it is.
Batch semantics: a recipe's ``batch_size`` is the global batch (split over the replicas) unless the
recipe says ``batch_per_replica=True``; see `Distribution`.

The helpers the custom training steps use (`scale_loss`, `gather`, `all_reduce_sum`) are no-ops
outside a multi-replica replica context, so a model computes the same thing with and without a
strategy. Only the chief of a multi-worker cluster writes a run's files; the other workers write to
a temporary directory of their own (`work_dir`), removed when the run has finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile

STRATEGIES = ("mirrored", "multi_worker")
LR_SCALINGS = ("none", "linear")

# One strategy per name and process: a process joins one multi-worker cluster only (the collective
# runtime is configured once), and two MirroredStrategy objects over the same devices would number
# their collective operations independently, so a second one (a second `train` call) could pair
# its replicas' operations wrongly.
_STRATEGIES: dict = {}


def check_strategy(strategy):
    """`strategy` if it names a strategy or is one; else `ValueError` naming it and the accepted values.

    Reads no devices (cheap: call it before any data is loaded). ``"multi_worker"`` also checks that
    ``TF_CONFIG`` describes a cluster this process belongs to.
    """
    if strategy is None:
        return None
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {list(STRATEGIES)}, a tf.distribute.Strategy or "
                             f"None; got {strategy!r}")
        if strategy == "multi_worker":
            cluster_config()
        return strategy
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.Strategy):
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, a tf.distribute.Strategy or None; "
                         f"got {strategy!r}")
    return strategy


def cluster_config() -> dict:
    """``TF_CONFIG`` parsed and checked: ``{"cluster": {...}, "task": {"type": ..., "index": ...}}``."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError("strategy 'multi_worker' reads the cluster from the TF_CONFIG environment "
                         "variable, which is not set; e.g. TF_CONFIG='{\"cluster\": {\"worker\": "
                         "[\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}'")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
        members = cluster[kind]
        if not 0 <= index < len(members):
            raise IndexError(index)
    except (ValueError, KeyError, TypeError, IndexError) as err:
        raise ValueError(f"TF_CONFIG must name a cluster and this process's task in it "
                         f"({type(err).__name__}: {err}); got {text!r}") from None
    return config


def resolve_strategy(strategy):
    """A `tf.distribute.Strategy` for `strategy` (see `check_strategy`), or None for None."""
    strategy = check_strategy(strategy)
    if strategy is None or not isinstance(strategy, str):
        return strategy
    import tensorflow as tf

    if strategy not in _STRATEGIES:
        if strategy == "multi_worker":
            limit = worker_timeout()
            every = min(WAIT_REPORT_SECONDS, max(limit / 4, _PROBE_SECONDS))
            wait_for_peers(limit, report_every=every)
            watch_peers(limit, report_every=every)
        _STRATEGIES[strategy] = (tf.distribute.MirroredStrategy() if strategy == "mirrored"
                                 else _multi_worker_class()())
    return _STRATEGIES[strategy]


# --------------------------------------------------------------------------- peers of a cluster

DEFAULT_WORKER_TIMEOUT = 600.0   # seconds a worker waits for a missing peer (at start-up or mid-run)
WAIT_REPORT_SECONDS = 30.0       # one line on stderr this often while a peer is missing
_PROBE_SECONDS = 2.0
_worker_timeout = [None]


def set_worker_timeout(seconds: float) -> float:
    """How long a ``"multi_worker"`` process waits for a task of ``TF_CONFIG`` that has not started,
    or has stopped answering, before it exits with status 1 naming it (CLI ``--worker-timeout``;
    default `DEFAULT_WORKER_TIMEOUT`, 600 s, or the ``KERAS_ZOO_WORKER_TIMEOUT`` environment variable).
    Set it before the strategy is created (before `train`, `finetune` or `tune`)."""
    import math

    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 < value < math.inf:
        raise ValueError(f"worker timeout must be a finite number of seconds > 0, got {seconds!r}")
    _worker_timeout[0] = value
    return value


def worker_timeout() -> float:
    """Seconds a worker waits for the other tasks of ``TF_CONFIG`` (at start-up and when a peer is lost): `set_worker_timeout`'s value, else ``$KERAS_ZOO_WORKER_TIMEOUT``, else `DEFAULT_WORKER_TIMEOUT`."""
    if _worker_timeout[0] is None:
        env = os.environ.get("KERAS_ZOO_WORKER_TIMEOUT")
        return set_worker_timeout(env) if env else DEFAULT_WORKER_TIMEOUT
    return _worker_timeout[0]


def _answers(address: str) -> bool:
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=_PROBE_SECONDS):
            return True
    except (OSError, ValueError):
        return False


class WorkerTimeoutError(TimeoutError):
    """A task of ``TF_CONFIG`` did not start, or stopped answering, within the worker timeout."""


def _peers(config: dict) -> list[tuple]:
    own = (config["task"]["type"], int(config["task"]["index"]))
    return [(kind, i, address) for kind, addresses in config["cluster"].items()
            for i, address in enumerate(addresses) if (kind, i) != own]


def wait_for_peers(timeout: float, config: dict | None = None, *, report_every: float = WAIT_REPORT_SECONDS,
                   stream=None) -> None:
    """Wait, before TensorFlow's collective runtime starts, until every other task of ``TF_CONFIG``
    answers at its address; a line every `report_every` seconds names those missing, and after
    `timeout` seconds `WorkerTimeoutError` names the first.

    TensorFlow waits for missing tasks inside its runtime's start-up, silently, without limit and
    holding Python's interpreter lock (no thread can speak meanwhile); so the wait happens here
    first. While waiting, this process answers at its own address (a plain listening socket, closed
    before TensorFlow's server takes the port), so that peers waiting the same way see it.
    """
    import socket
    import sys
    import time

    config = config or cluster_config()
    stream = stream or sys.stderr
    peers = _peers(config)
    own = config["cluster"][config["task"]["type"]][int(config["task"]["index"])]
    host, _, port = own.rpartition(":")
    listener = None
    try:
        listener = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("", int(port)))
        listener.listen(64)
    except (OSError, ValueError):  # the port is taken (a restarted task's server lingering): just probe
        if listener is not None:
            listener.close()
        listener = None
    start = reported = time.monotonic()
    try:
        while True:
            missing = [p for p in peers if not _answers(p[2])]
            now = time.monotonic()
            if not missing:
                return
            kind, i, address = missing[0]
            others = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            if now - start >= timeout:
                raise WorkerTimeoutError(f"{kind} {i} at {address}{others} did not start within {timeout:g} s "
                                         "(--worker-timeout); stopping")
            if now - reported >= report_every:
                reported = now
                print(f"keras-zoo: waiting for {kind} {i} at {address}{others}, {now - start:.0f} s of "
                      f"{timeout:g} s", file=stream, flush=True)
            time.sleep(1.0)
    finally:
        if listener is not None:
            listener.close()


def watch_peers(timeout: float, config: dict | None = None, *, report_every: float = WAIT_REPORT_SECONDS,
                stream=None) -> "threading.Thread":
    """Watch the other tasks of ``TF_CONFIG`` from a daemon thread, once they have all answered
    (`wait_for_peers`): a task that stops answering mid-run (its process died, its machine went
    away) is named in a line every `report_every` seconds (``lost contact with worker 1 at
    127.0.0.1:PORT, 40 s of 600 s``), and once it has been silent for `timeout` seconds this
    process prints one line and exits with status 1 (a collective operation would wait for it
    forever). A task restarted within the limit is waited for, as TensorFlow does.
    """
    import sys
    import threading
    import time

    config = config or cluster_config()
    stream = stream or sys.stderr
    peers = _peers(config)

    def run():
        since = {peer: time.monotonic() for peer in peers}  # when each was last seen (or start-up)
        joined, reported = set(peers), time.monotonic()
        while True:
            now = time.monotonic()
            missing = []
            for peer in peers:
                if _answers(peer[2]):
                    since[peer] = time.monotonic()
                    joined.add(peer)
                else:
                    missing.append(peer)
            now = time.monotonic()
            late = [p for p in missing if now - since[p] >= timeout]
            if late:
                kind, i, address = late[0]
                what = "did not start" if late[0] not in joined else "stopped answering"
                print(f"keras-zoo: {kind} {i} at {address} {what} within {timeout:g} s (--worker-timeout); "
                      "stopping", file=stream, flush=True)
                sys.stdout.flush()
                os._exit(1)
            if missing and now - reported >= report_every:
                reported = now
                kind, i, address = missing[0]
                others = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                verb = "waiting for" if missing[0] not in joined else "lost contact with"
                print(f"keras-zoo: {verb} {kind} {i} at {address}{others}, {now - since[missing[0]]:.0f} s of "
                      f"{timeout:g} s", file=stream, flush=True)
            elif not missing:
                reported = now
            time.sleep(_PROBE_SECONDS)

    thread = threading.Thread(target=run, name="keras_zoo-peer-watch", daemon=True)
    thread.start()
    return thread


def _multi_worker_class():
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """`tf.distribute.MultiWorkerMirroredStrategy` whose `reduce` takes what Keras 3 gives it.

        Keras 3's `fit` on a multi-worker cluster (keras-team/keras#20585) reduces the first batch,
        ``(x, y)``, in one call, which the collective strategy refuses, and reduces each step's
        scalar logs along axis 0, which a scalar lacks. Here a nest is reduced one value at a time
        (in the same order on every worker) and a scalar across the replicas only.
        """

        def reduce(self, reduce_op, value, axis):
            if isinstance(value, (tuple, list, dict)):
                return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
            local = self.experimental_local_results(value)[0] if isinstance(
                value, tf.distribute.DistributedValues) else value
            if axis is not None and getattr(local, "shape", None) is not None and local.shape.rank == 0:
                axis = None
            return super().reduce(reduce_op, value, axis)

    return MultiWorkerMirroredStrategy


def scope(strategy):
    """``strategy.scope()``, or a context that does nothing for None."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def task_of(strategy) -> tuple:
    """(task type, task index, number of workers) of this process; ``(None, 0, 1)`` outside a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return None, 0, 1
    spec = resolver.cluster_spec().as_dict()
    workers = sum(len(spec.get(kind, ())) for kind in ("chief", "worker"))
    return resolver.task_type, int(resolver.task_id or 0), max(1, workers)


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files: always, except on a multi-worker cluster's
    non-chief workers (the chief is task ``chief``, or ``worker`` 0 when the cluster has no chief)."""
    kind, index, _ = task_of(strategy)
    if kind is None or kind == "chief":
        return True
    has_chief = "chief" in strategy.cluster_resolver.cluster_spec().as_dict()
    return kind == "worker" and index == 0 and not has_chief


def work_dir(run_dir: str, strategy) -> str:
    """Where this process writes: `run_dir` on the chief; on another worker a temporary directory
    named after `run_dir` and the task (the same for a restarted worker, so it finds its backup)."""
    if is_chief(strategy):
        return run_dir
    kind, index, _ = task_of(strategy)
    key = hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"keras_zoo-{key}-{kind}-{index}")


def remove_work_dir(run_dir: str, written: str) -> None:
    """Remove a worker's temporary directory (`written` != `run_dir`) after its run."""
    if os.path.abspath(written) != os.path.abspath(run_dir):
        shutil.rmtree(written, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class Distribution:
    """How a run spreads over devices, as written to ``metrics.json``.

    The pipeline yields batches of `global_batch_size` examples; Keras splits each over the
    replicas (`per_replica_batch_size` each). With ``batch_per_replica=False`` (the default) the
    recipe's ``batch_size`` is the global batch, so adding devices changes neither the optimisation
    nor the number of steps; with ``batch_per_replica=True`` it is each replica's, and the global
    batch grows with the replicas. ``lr_scaling="linear"`` multiplies the learning rate by the
    number of replicas (Goyal et al. 2017, for per-replica batches).
    """

    strategy: str
    replicas: int
    workers: int
    batch_semantics: str
    global_batch_size: int
    per_replica_batch_size: int
    lr_scaling: str
    learning_rate: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def strategy_name(strategy) -> str:
    """``"none"``, ``"mirrored"``, ``"multi_worker"`` or the class name of another strategy."""
    if strategy is None:
        return "none"
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multi_worker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    return type(strategy).__name__


def distribution(strategy, batch_size: int, learning_rate: float, batch_per_replica: bool = False,
                 lr_scaling: str = "none") -> Distribution:
    """The `Distribution` of a recipe's batch size and learning rate under `strategy`."""
    if lr_scaling not in LR_SCALINGS:
        raise ValueError(f"lr_scaling must be one of {list(LR_SCALINGS)}, got {lr_scaling!r}")
    replicas = replicas_of(strategy)
    global_batch = batch_size * replicas if batch_per_replica else batch_size
    if global_batch % replicas:
        raise ValueError(f"the global batch of {global_batch} does not split evenly over {replicas} "
                         f"replicas: use a batch_size that is a multiple of {replicas}")
    rate = learning_rate * replicas if lr_scaling == "linear" else learning_rate
    return Distribution(strategy=strategy_name(strategy), replicas=replicas, workers=task_of(strategy)[2],
                        batch_semantics="per_replica" if batch_per_replica else "global",
                        global_batch_size=global_batch, per_replica_batch_size=global_batch // replicas,
                        lr_scaling=lr_scaling, learning_rate=rate)


def replicas_of(strategy) -> int:
    """Replicas in sync under `strategy` (1 without one)."""
    return int(strategy.num_replicas_in_sync) if strategy is not None else 1


def synchronize_batch_norm(model, synchronized: bool = True) -> list:
    """Set ``synchronized`` on every `BatchNormalization` layer of `model` (nested models too), so
    that under several replicas it normalises with the global batch's statistics, as one device
    would. Returns the layers whose setting changed (pass them to `restore_batch_norm`)."""
    import keras

    changed = []
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization) and layer.synchronized != synchronized:
            layer.synchronized = synchronized
            changed.append(layer)
    return changed


def restore_batch_norm(layers) -> None:
    """Undo `synchronize_batch_norm` (so a saved model's config is the same as a one-device run's)."""
    for layer in layers:
        layer.synchronized = not layer.synchronized


def _all_layers(model):
    seen, stack = set(), [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield layer
        stack.extend(getattr(layer, "layers", None) or [])
        # Sub-models held as attributes (a GAN's generator, SimCLR's encoder) are tracked layers.
        stack.extend(v for v in vars(layer).values() if _is_layer(v))


def _is_layer(value) -> bool:
    import keras

    return isinstance(value, keras.layers.Layer)


# === Inside a training step ===

def _replica_context():
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def scale_loss(value):
    """A replica's mean loss scaled so that the gradients Keras's optimizer sums over the replicas
    are those of the mean over the global batch (as Keras does for compiled losses)."""
    context = _replica_context()
    if context is None:
        return value
    return value * (1.0 / context.num_replicas_in_sync)


def gather(value):
    """`value` of every replica concatenated along axis 0 (replica order), with gradients flowing
    back to each replica's part; `value` itself outside several replicas."""
    context = _replica_context()
    return value if context is None else context.all_gather(value, axis=0)


def replica_offset(local_count):
    """Index of this replica's first row in `gather`'s result (0 outside several replicas)."""
    context = _replica_context()
    if context is None:
        return 0
    import tensorflow as tf

    counts = context.all_gather(tf.reshape(tf.cast(local_count, tf.int32), (1,)), axis=0)
    before = tf.range(context.num_replicas_in_sync) < tf.cast(context.replica_id_in_sync_group, tf.int32)
    return tf.reduce_sum(tf.where(before, counts, 0))


def all_reduce_sum(value):
    """Sum of `value` over the replicas (differentiable); `value` itself outside several replicas."""
    context = _replica_context()
    if context is None:
        return value
    import tensorflow as tf

    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


# === Data ===

def shard_splits(splits, strategy):
    """`splits` (a `keras_zoo.data.Splits`) made ready for `strategy`'s workers.

    Every worker builds the same seeded pipelines (the same split membership, the same shuffled
    order each epoch), so sharding by data is exact: each keeps its share of every global batch.
    Pipelines read from memory or decode cached examples before they shuffle, so whole files
    cannot be handed to one worker without changing the shuffle; the policy is ``"data"`` for all.
    """
    if task_of(strategy)[2] < 2:
        return splits
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataclasses.replace(splits, **{split: getattr(splits, split).with_options(options)
                                          for split in ("train", "validation", "test")})
