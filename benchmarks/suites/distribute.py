"""Training throughput (images/s) on 1 device, on every local device (MirroredStrategy), and on two
worker processes (MultiWorkerMirroredStrategy over 127.0.0.1), with the scaling efficiency of each.

On a machine with GPUs, "1 device" is the first GPU and "mirrored" uses all of them; the two workers
get one GPU each when there are two or more (else they share the CPU). Without a GPU the CPU is
split into two logical devices for "mirrored" (the same cores: no speed-up is possible, the
figure shows the cost of the replication) and the two workers share the cores too. The global
batch is the same in every row (the package's batch semantics), so the rows do the same work.
Each configuration runs in a process of its own (devices are fixed when TensorFlow starts).

    python benchmarks/run.py --only distribute -- [--model cnn_small] [--shape 28,28,1] [--batch 128] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


def _measure(args):
    """Images per second of `fit` on synthetic data under the configuration `args.role` names."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if args.role == "mirrored" and not gpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np

    import keras_zoo
    from keras_zoo import distribute
    from keras_zoo.recipes import get_recipe

    if args.role == "one":
        strategy = tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    elif args.role == "mirrored":
        strategy = tf.distribute.MirroredStrategy(None if gpus else ["/cpu:0", "/cpu:1"])
    else:
        strategy = distribute.resolve_strategy("multi_worker")
    shape = tuple(int(s) for s in args.shape.split(","))
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras_zoo.create_model(args.model, input_shape=shape)
        get_recipe(keras_zoo.get_spec(args.model).recipe).compile(model)
    synchronized = distribute.synchronize_batch_norm(model) if strategy.num_replicas_in_sync > 1 else []
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.batch * 4, *shape)).astype("float32")
    y = rng.integers(0, 10, size=(args.batch * 4,)).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(args.batch).prefetch(2)
    model.fit(data, epochs=1, steps_per_epoch=5, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0)
    seconds = time.perf_counter() - start
    distribute.restore_batch_norm(synchronized)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "images_per_s": args.batch * args.steps / seconds,
                      "devices": [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]}), flush=True)


def _run(args, role, env=None, index=None, ports=None):
    command = [sys.executable, os.path.abspath(__file__), "--role", role, "--model", args.model,
               "--shape", args.shape, "--batch", str(args.batch), "--steps", str(args.steps)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    if index is not None:
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                       "task": {"type": "worker", "index": index}})
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc):
    stdout, stderr = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark process failed:\n{stderr[-3000:]}")
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def _cpu_flags() -> dict:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return {"model_name": fields.get("Model name", "").strip(), "cpus": os.cpu_count(),
            "flags": [f for f in flags if f.startswith(("avx", "amx", "fma", "sse4"))]}


def _gpu_count() -> int:
    proc = subprocess.run([sys.executable, "-c", "import tensorflow as tf; "
                           "print(len(tf.config.list_physical_devices('GPU')))"],
                          capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return int(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="cnn_small")
    parser.add_argument("--shape", default="28,28,1")
    parser.add_argument("--batch", type=int, default=128, help="global batch (the same in every row)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--role", choices=("one", "mirrored", "worker"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        return _measure(args)

    load_before = os.getloadavg()
    gpus = _gpu_count()
    rows = [{"configuration": "1 device", **_result(_run(args, "one"))}]
    rows.append({"configuration": "mirrored, all local devices", **_result(_run(args, "mirrored"))})
    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    workers = [_run(args, "worker", {"CUDA_VISIBLE_DEVICES": str(i) if gpus >= 2 else ""}, i, ports)
               for i in range(2)]
    chief, _ = (_result(p) for p in workers)
    rows.append({"configuration": "2 workers on 127.0.0.1", **chief})
    reference = rows[0]["images_per_s"]
    for r in rows:
        r["speedup"] = r["images_per_s"] / reference
        r["efficiency"] = r["speedup"] / r["replicas"]
    print(f"{args.model} {args.shape}, global batch {args.batch}, {args.steps} steps; GPUs: {gpus}")
    print(f"{'configuration':<30} {'replicas':>8} {'images/s':>10} {'speed-up':>9} {'efficiency':>10}")
    for r in rows:
        print(f"{r['configuration']:<30} {r['replicas']:>8} {r['images_per_s']:>10.0f} "
              f"{r['speedup']:>8.2f}x {r['efficiency']:>9.0%}")
    from keras_zoo._io import atomic_write_text

    result = {"topic": "distribute", "model": args.model, "input_shape": args.shape, "global_batch": args.batch,
              "steps": args.steps, "gpus": gpus, "rows": rows, "cpu": _cpu_flags(),
              "load_before": [round(x, 2) for x in load_before],
              "load_after": [round(x, 2) for x in os.getloadavg()],
              "command": " ".join(["python benchmarks/run.py --only distribute --", *sys.argv[1:]])}
    out = os.path.join(ROOT, "benchmarks", "results", f"distribute_{'gpu' if gpus else 'cpu'}.json")
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"written: {os.path.relpath(out, ROOT)}; CPU {result['cpu'].get('model_name')}, load "
          f"{result['load_before']} before, {result['load_after']} after")


if __name__ == "__main__":
    main()
