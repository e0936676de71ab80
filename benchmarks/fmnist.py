#!/usr/bin/env python
"""Fashion-MNIST at research scale: one chain, the CNN's FLOP rate, a sweep chunk's memory, the MLP grid.

    .venv/bin/python benchmarks/fmnist.py [--parts chain,flops,sweep,grid] [--cnn-steps 20] [--mlp-steps 400]
                                          [--grid-epochs 1] [--json results/fmnist_bench.json]

Every part runs in its own child process (so its peak resident memory,
``ru_maxrss``, is its own) on the 60,000 training images of Debian's
``dataset-fashion-mnist`` (``make fashion-mnist``), compile included where
said. The networks are the research protocol's (:mod:`bayesjax.experiments.sweep.presets`):
an MLP 784-100-100-10 and Fortuin et al. (2021)'s CNN (``bj.models.fortuin_cnn``),
He-scaled Gaussian prior, categorical likelihood, batches of 128.

1. ``chain``: one SGLD chain at the default learning rate (0.1 per example)
   through ``bj.run`` against a hand-written ``lax.scan`` over the same
   network (gradient of the per-example loss only, a permutation per epoch,
   noise leaf by leaf): examples per second of each (steady state: the second call)
   and their ratio (target: ``bj.run`` within 1.1x), the first call's wall
   time (compile included), and whether the chain stayed finite at T = 1 and
   T = 1e-4 (the default must be stable across the Wenzel grid).
2. ``flops``: the CNN's gradient step FLOPs (XLA's cost analysis) times the
   steps per second of the hand-written scan, against a float32 1024x1024
   matmul's rate measured in the same child: the fraction of the machine's
   matmul peak the CNN reaches.
3. ``sweep``: a chunk of 2 cells (T = 1 and 0.1) of the CNN sweep with
   augmentation, ``--cnn-steps`` steps, 4 predictive draws per cell over the
   10,000 test and 10,000 rotated images, through ``run_sweep``: wall time
   and peak RSS (target: <= 6 GiB).
4. ``grid``: ``bayesjax sweep --preset fmnist-mlp`` (17 T x 3 seeds x
   augmentation off/on, host split into its cores) cut to ``--grid-epochs``
   epochs per chain: wall time and the linear extrapolation to the preset's
   30 epochs (an upper bound: evaluation does not grow with epochs). Its
   tables and figure stay in ``results/fmnist_grid_<epochs>_epochs`` (a rerun
   resumes there: delete it to time afresh).

Without the Fashion-MNIST files every part reports that and exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, machine_facts, peak_rss_mb, run_child, timed  # noqa: E402

BATCH_SIZE = 128


def network(name: str):
    import bayesjax as bj

    return bj.models.mlp([100, 100], num_outputs=10) if name == "mlp" else bj.models.fortuin_cnn(10)


def target(name: str, temperature: float):
    import jax

    import bayesjax as bj

    ds = bj.data.load("fashion_mnist")
    model = network(name)
    params = model.init(jax.random.key(0), ds.x_train[:1])
    lj = bj.log_joint(model.apply, bj.priors.layerwise("he"), bj.likelihoods.categorical(), len(ds.y_train),
                      temperature=temperature)
    return ds, model, params, lj


def hand_scan(lj, step_size: float, num_steps: int):
    """The leanest SGLD loop on ``lj``'s network: ``(key, params, x, y) -> params`` (jitted)."""
    import jax
    import jax.numpy as jnp

    eps = step_size / lj.num_data
    noise_scale = jnp.sqrt(2 * eps * lj.temperature)

    @jax.jit
    def run(key, params, x, y):
        epochs = -(-num_steps * BATCH_SIZE // x.shape[0])
        perms = jax.vmap(lambda k: jax.random.permutation(k, x.shape[0]))(jax.random.split(key, epochs))
        order = perms.reshape(-1)[: num_steps * BATCH_SIZE].reshape(num_steps, BATCH_SIZE)

        def step(p, args):
            index, k = args
            grad = jax.grad(lj.potential)(p, (x[index], y[index]))
            leaves, treedef = jax.tree.flatten(p)
            keys = jax.random.split(k, len(leaves))
            noise = treedef.unflatten([jax.random.normal(kk, w.shape, w.dtype) for kk, w in zip(keys, leaves)])
            return jax.tree.map(lambda w, g, n: w - eps * g + noise_scale * n, p, grad, noise), None

        return jax.lax.scan(step, params, (order, jax.random.split(key, num_steps)))[0]

    return run


def chain_part(name: str, num_steps: int) -> dict:
    import jax
    import numpy as np

    import bayesjax as bj
    from bayesjax.experiments.sweep import SweepConfig

    step_size = SweepConfig.step_size
    out = {"model": name, "steps": num_steps, "learning_rate": step_size}
    for temperature in (1.0, 1e-4):
        ds, model, params, lj = target(name, temperature)
        algo = bj.sgld(lj, step_size)
        x, y = jax.device_put(ds.x_train), jax.device_put(ds.y_train)  # both loops get the data placed once

        def library(key):
            post = bj.run(key, algo, params, (x, y), num_steps=num_steps, batch_size=BATCH_SIZE,
                          num_samples=1, progress=False)
            return jax.block_until_ready(post)

        first = timed(library, jax.random.key(1))
        out[f"finite_at_T{temperature:g}"] = not first.result.divergences and bool(
            np.all(np.isfinite(np.asarray(first.result.info.log_density))))
        if temperature != 1.0:
            continue
        steady = timed(library, jax.random.key(2))
        hand = hand_scan(lj, step_size, num_steps)
        hand_first = timed(lambda k: jax.block_until_ready(hand(k, params, x, y)), jax.random.key(1))
        hand_steady = timed(lambda k: jax.block_until_ready(hand(k, params, x, y)), jax.random.key(2))
        examples = num_steps * BATCH_SIZE
        out.update(first_call_s=first.wall_s, hand_first_call_s=hand_first.wall_s,
                   bj_examples_per_s=examples / steady.wall_s, hand_examples_per_s=examples / hand_steady.wall_s,
                   bj_over_hand=steady.wall_s / hand_steady.wall_s)
    return out


def flops_part(num_steps: int) -> dict:
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (1024, 1024))
    matmul = jax.jit(lambda a: a @ a)
    jax.block_until_ready(matmul(a))
    best = min(timed(lambda: jax.block_until_ready(matmul(a))).wall_s for _ in range(20))
    peak = 2 * 1024**3 / best

    ds, model, params, lj = target("cnn", 1.0)
    xb, yb = jnp.asarray(ds.x_train[:BATCH_SIZE]), jnp.asarray(ds.y_train[:BATCH_SIZE])
    cost = jax.jit(jax.grad(lj.potential)).lower(params, (xb, yb)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    hand = hand_scan(lj, 0.1, num_steps)
    x, y = jax.device_put(ds.x_train), jax.device_put(ds.y_train)
    jax.block_until_ready(hand(jax.random.key(0), params, x, y))
    wall = timed(lambda: jax.block_until_ready(hand(jax.random.key(1), params, x, y))).wall_s
    rate = cost["flops"] * num_steps / wall
    return {"matmul_gflops": peak / 1e9, "cnn_step_gflop": cost["flops"] / 1e9, "cnn_gflops": rate / 1e9,
            "fraction_of_matmul_peak": rate / peak, "cnn_steps_per_s": num_steps / wall}


def sweep_part(num_steps: int) -> dict:
    from bayesjax.experiments import sweep

    config = sweep.SweepConfig(dataset="fashion_mnist", model="cnn", method="sgld", prior="gaussian", augment=True,
                               temperatures=(1.0, 0.1), seeds=(0,), num_steps=num_steps, burnin=num_steps // 2,
                               thin=max(1, num_steps // 8), num_chains=1, num_predictive_samples=4)
    with tempfile.TemporaryDirectory() as out:
        run = timed(sweep.run_sweep, config, out, progress=False, cells_per_chunk=2)
    return {"cells": 2, "steps": num_steps, "wall_s": run.wall_s,
            "accuracy": [r["accuracy"] for r in run.result]}


def grid_part(epochs: float) -> dict:
    from bayesjax import cli
    from bayesjax.experiments.sweep.presets import PRESETS

    steps = int(epochs * (60_000 // BATCH_SIZE))
    out = f"results/fmnist_grid_{epochs:g}_epochs"  # kept: its tables and sweep.png
    argv = ["sweep", "--preset", "fmnist-mlp", "--steps", str(steps), "--epochs-per-cycle", str(max(1, int(epochs))),
            "--quiet", "--out", out]
    run = timed(cli.main, argv)
    full_steps = PRESETS["fmnist-mlp"]["steps"]
    return {"epochs": epochs, "steps": steps, "exit_code": run.result, "wall_s": run.wall_s,
            "extrapolated_30_epochs_s": run.wall_s * full_steps / steps}


def child(part: str, args) -> dict:
    import bayesjax as bj

    try:
        bj.data.load("fashion_mnist")
    except FileNotFoundError as error:
        return {"skipped": str(error)}
    if part == "chain":
        result = {"mlp": chain_part("mlp", args.mlp_steps), "cnn": chain_part("cnn", args.cnn_steps)}
    elif part == "flops":
        result = flops_part(args.cnn_steps)
    elif part == "sweep":
        result = sweep_part(args.cnn_steps)
    else:
        result = grid_part(args.grid_epochs)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--parts", default="chain,flops,sweep,grid")
    parser.add_argument("--cnn-steps", type=int, default=20)
    parser.add_argument("--mlp-steps", type=int, default=400)
    parser.add_argument("--grid-epochs", type=float, default=1.0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        emit(child(args.child, args))
        return
    report = {"machine": machine_facts(), "parts": {}}
    print(json.dumps(report["machine"], indent=1), flush=True)
    passed = ["--cnn-steps", str(args.cnn_steps), "--mlp-steps", str(args.mlp_steps),
              "--grid-epochs", str(args.grid_epochs)]
    for part in args.parts.split(","):
        done = run_child(__file__, ["--child", part, *passed], timeout=3600)
        report["parts"][part] = done.result if done.result is not None else {"error": done.error}
        print(f"--- {part} ({done.wall_s:.1f} s, process)\n{json.dumps(report['parts'][part], indent=1)}", flush=True)
    if args.json:
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
