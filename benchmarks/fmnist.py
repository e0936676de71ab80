#!/usr/bin/env python
"""Fashion-MNIST at research scale: one chain, the CNN's FLOP rate, a sweep chunk's memory, the MLP grid.

    .venv/bin/python benchmarks/fmnist.py [--parts chain,flops,sweep,grid,resnet] [--cnn-steps 20] [--mlp-steps 400]
                                          [--grid-epochs 1] [--resnet-steps 10] [--torch-python PATH]
                                          [--json results/fmnist_bench.json]

Every part runs in its own child process (so its peak resident memory,
Linux's ``VmHWM``, is its own) on the 60,000 training images of Debian's
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
   T = 1e-4 (the default must be stable across the Wenzel grid). Then, as in
   part 5, the same chain at T = 1 in PyTorch on the same network and
   weights, a child under ``--torch-python`` (target: ``bj.run`` at least 2x
   PyTorch's examples per second on the MLP and 1.5x on the CNN): a lean
   loop (``F.linear`` / ``F.conv2d`` with flax's SAME padding, 2x2
   ``max_pool2d``, a preloaded tensor indexed by a permutation per epoch,
   loss ``U / N`` = mean NLL + ``-log prior / N``, ``backward``, the
   in-place update ``w -= lr grad + sqrt(2 lr / N) xi`` of ``bj.sgld``) and
   ``posteriors.sgmcmc.sgld`` (normal-computing's library, where installed
   in that interpreter: ``pip install posteriors``; log posterior per
   example, temperature ``1 / N``: the same update) on the same batches:
   logits on 8 images against ``model.apply``'s, examples per second over
   the timed steps after two untimed ones, the median and the best single
   step. Figures (both targets missed on 2 CPU cores) and the command that
   took them: benchmarks/README.md, "fmnist.py".
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
5. ``resnet``: ResNet-20 with filter response normalization
   (``bj.models.resnet20(norm="frn")``, Izmailov et al. 2021's HMC network),
   ``--resnet-steps`` SGLD steps at T = 1 through ``bj.run`` against the
   hand-written scan of part 1 (target: within 1.15x) and against PyTorch on
   the same network and weights (target: ``bj.run`` at least 1.5x faster):
   part 1's lean PyTorch loop (functional ``F.conv2d`` on the JAX weights, SAME
   padding as flax's, index a preloaded tensor, ``backward``, an in-place
   Langevin update), run as a child under ``--torch-python`` (or
   ``$BENCH_TORCH_PYTHON``; e.g. a venv with ``pip install torch==2.13.0
   numpy``) with one thread per usable core, after two untimed steps, each
   step timed (PyTorch's thread pool suffers most from other processes on
   a shared machine: compare its best step too). Its logits on 8 images are
   compared with ``model.apply``'s (the same network). Examples per second
   of each, steady state; the first ``bj.run`` call's wall time includes
   its compile.

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
from _common import emit, loadavg, machine_facts, peak_rss_mb, run_child, summary, timed  # noqa: E402

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


TORCH_TARGETS = {"mlp": 2.0, "cnn": 1.5, "resnet": 1.5}
"""Issue 17's targets: ``bj.run`` at least this many times PyTorch's examples per second."""


def chain_part(name: str, num_steps: int, torch_python: str | None = None) -> dict:
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
        out.update(against_torch(name, model, params, lj, ds, step_size, num_steps, out["bj_examples_per_s"],
                                 torch_python, with_posteriors=True))
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


def flat_paths(tree, prefix: str = "") -> dict:
    """A nested dict of arrays as ``{"a/b/c": array}``."""
    out = {}
    for name, value in tree.items():
        out.update(flat_paths(value, f"{prefix}{name}/") if isinstance(value, dict) else {prefix + name: value})
    return out


def resnet_part(num_steps: int, torch_python: str | None) -> dict:
    import jax

    import bayesjax as bj
    from bayesjax.experiments.sweep import SweepConfig

    step_size = SweepConfig.step_size
    ds = bj.data.load("fashion_mnist")
    model = bj.models.resnet20(10, norm="frn")
    params = jax.jit(model.init)(jax.random.key(0), ds.x_train[:1])
    prior = bj.priors.layerwise("he")
    lj = bj.log_joint(model.apply, prior, bj.likelihoods.categorical(), len(ds.y_train))
    algo = bj.sgld(lj, step_size)
    x, y = jax.device_put(ds.x_train), jax.device_put(ds.y_train)

    def library(key):
        post = bj.run(key, algo, params, (x, y), num_steps=num_steps, batch_size=BATCH_SIZE, num_samples=1,
                      progress=False)
        return jax.block_until_ready(post)

    first = timed(library, jax.random.key(1))
    steady = timed(library, jax.random.key(2))
    hand = hand_scan(lj, step_size, num_steps)
    hand_first = timed(lambda k: jax.block_until_ready(hand(k, params, x, y)), jax.random.key(1))
    hand_steady = timed(lambda k: jax.block_until_ready(hand(k, params, x, y)), jax.random.key(2))
    examples = num_steps * BATCH_SIZE
    out = {"steps": num_steps, "learning_rate": step_size, "weights": sum(a.size for a in jax.tree.leaves(params)),
           "leaves": len(jax.tree.leaves(params)), "finite": not first.result.divergences,
           "first_call_s": first.wall_s, "hand_first_call_s": hand_first.wall_s,
           "bj_examples_per_s": examples / steady.wall_s, "hand_examples_per_s": examples / hand_steady.wall_s,
           "bj_over_hand": steady.wall_s / hand_steady.wall_s}
    out.update(against_torch("resnet", model, params, lj, ds, step_size, num_steps, out["bj_examples_per_s"],
                             torch_python))
    return out


def against_torch(name: str, model, params, lj, ds, step_size: float, num_steps: int, bj_examples_per_s: float,
                  torch_python: str | None, with_posteriors: bool = False) -> dict:
    """Runs SGLD at T = 1 on the same network and weights in PyTorch (:func:`torch_child`) and compares.

    Writes the training set (NCHW), the weights (flax HWIO / ``[in, out]`` ->
    torch OIHW / ``[out, in]``), the prior's standard deviation per leaf and
    ``model.apply``'s logits on 8 images to an .npz that a child under
    ``torch_python`` (else ``$BENCH_TORCH_PYTHON``, else this interpreter)
    reads. Returns ``{"torch": its result}`` plus ``bj.run``'s speed-up over
    PyTorch (and over ``posteriors`` where it ran) and whether it meets
    :data:`TORCH_TARGETS`.
    """
    import jax
    import numpy as np

    torch_python = torch_python or os.environ.get("BENCH_TORCH_PYTHON") or sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.npz")
        layout = {4: (3, 2, 0, 1), 2: (1, 0), 1: (0,)}  # flax HWIO / [in, out] -> torch OIHW / [out, in]
        weights = {f"w:{k}": np.asarray(v).transpose(layout[v.ndim]) for k, v in flat_paths(params).items()}
        stddevs = {f"s:{k}": np.ravel(v)[0] for k, v in flat_paths(lj.prior.stddev(params)).items()}
        x = np.asarray(ds.x_train)
        np.savez(path, x=np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y=np.asarray(ds.y_train),
                 logits=np.asarray(jax.jit(model.apply)(params, x[:8])), step_size=step_size, num_steps=num_steps,
                 network=name, posteriors=with_posteriors, **weights, **stddevs)
        done = run_child(__file__, ["--child", "torch", "--torch-data", path], python=torch_python, timeout=3600)
    theirs = done.result if done.result is not None else {"skipped": done.error}
    out = {"torch": theirs}
    if "examples_per_s" in theirs:
        speedup = bj_examples_per_s / theirs["examples_per_s"]
        out.update(bj_speedup_over_torch=speedup, bj_speedup_over_torch_best_step=(
            bj_examples_per_s / theirs["best_step_examples_per_s"]), torch_target=(
            f">= {TORCH_TARGETS[name]:g}x: {'met' if speedup >= TORCH_TARGETS[name] else 'MISSED'}"))
    if "examples_per_s" in theirs.get("posteriors", {}):
        out["bj_speedup_over_posteriors"] = bj_examples_per_s / theirs["posteriors"]["examples_per_s"]
    return out


def torch_forward(name: str, p: dict):
    """``forward(p, images NCHW) -> logits`` in PyTorch for network ``name`` on the weights ``p`` (torch layout).

    Mirrors :func:`network` and ``bj.models.resnet20(norm="frn")``: a ``3 x 3``
    convolution pads by flax's SAME (1 on each side at stride 1; 0 before
    and 1 after at stride 2 on an even input). The CNN's head kernel is
    permuted in ``p`` from flax's flattening order (H, W, C) to torch's (C, H, W).
    """
    import torch
    import torch.nn.functional as F

    def conv_same(h, kernel, bias, stride=1):
        if stride == 2 and kernel.shape[-1] == 3:  # flax's SAME pads an even input by 0 before and 1 after
            return F.conv2d(F.pad(h, (0, 1, 0, 1)), kernel, bias, stride=2)
        return F.conv2d(h, kernel, bias, stride=stride, padding=kernel.shape[-1] // 2)

    if name == "mlp":
        layers = sorted(int(k.split("/")[0].split("_")[1]) for k in p if k.endswith("/kernel"))

        def forward(p, h):
            h = h.flatten(1)
            for i in layers:
                h = F.linear(h, p[f"Dense_{i}/kernel"], p[f"Dense_{i}/bias"])
                h = F.relu(h) if i != layers[-1] else h
            return h

        return forward
    if name == "cnn":
        head = p["Dense_0/kernel"]
        channels = p["Conv_1/kernel"].shape[0]
        side = int(round((head.shape[1] // channels) ** 0.5))
        with torch.no_grad():
            p["Dense_0/kernel"] = head.view(-1, side, side, channels).permute(0, 3, 1, 2).reshape(
                head.shape[0], -1).contiguous().requires_grad_(head.requires_grad)

        def forward(p, h):
            for i in (0, 1):
                h = F.max_pool2d(F.relu(conv_same(h, p[f"Conv_{i}/kernel"], p[f"Conv_{i}/bias"])), 2)
            return F.linear(h.flatten(1), p["Dense_0/kernel"], p["Dense_0/bias"])

        return forward

    def conv_norm(p, name, h, stride):
        h = conv_same(h, p[f"{name}/Conv_0/kernel"], p[f"{name}/Conv_0/bias"], stride)
        gamma, beta, tau = (p[f"{name}/FilterResponseNorm_0/{k}"].view(1, -1, 1, 1) for k in ("gamma", "beta", "tau"))
        h = h * torch.rsqrt(h.square().mean(dim=(2, 3), keepdim=True) + 1e-6)
        return torch.maximum(gamma * h + beta, tau)

    def forward(p, h):
        h = F.relu(conv_norm(p, "Stem", h, 1))
        for stage in (1, 2, 3):
            for block in range(3):
                name, stride = f"Block_{stage}_{block}", 2 if stage > 1 and block == 0 else 1
                z = conv_norm(p, f"{name}/ConvNorm_1", F.relu(conv_norm(p, f"{name}/ConvNorm_0", h, stride)), 1)
                h = F.relu((conv_norm(p, f"{name}/Shortcut", h, stride) if stride == 2 else h) + z)
        return F.linear(h.mean(dim=(2, 3)), p["Dense_0/kernel"], p["Dense_0/bias"])

    return forward


def torch_child(data_path: str) -> dict:
    """The PyTorch side of parts 1 and 5, under an interpreter with torch and NumPy (no JAX).

    SGLD at T = 1 with bayesjax's convention (``bj.sgld``): the loss is
    ``U / N`` (the batch's mean categorical NLL plus the Gaussian prior's
    ``-log p / N``) and ``w <- w - lr grad(U / N) + sqrt(2 lr / N) xi``.
    A lean loop (index a preloaded tensor with a permutation per epoch,
    ``backward``, an in-place update), then, where asked and installed,
    ``posteriors.sgmcmc.sgld`` on the same weights and batches (its log
    posterior per example, temperature ``1 / N``: the same update).
    """
    try:
        import numpy as np
        import torch
        import torch.nn.functional as F
    except ImportError as error:
        return {"skipped": f"torch not importable: {error}"}
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    d = np.load(data_path)
    name, num_steps, step_size = str(d["network"]), int(d["num_steps"]), float(d["step_size"])
    start = {k[2:]: torch.from_numpy(np.ascontiguousarray(d[k])) for k in d.files if k.startswith("w:")}
    stddev = {k[2:]: float(d[k]) for k in d.files if k.startswith("s:")}
    x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"]).long()
    n = len(y)
    forward = torch_forward(name, start)
    noise_scale = (2 * step_size / n) ** 0.5  # T = 1

    def loss(p, index):  # U / N
        prior = sum(w.square().sum() / (2 * stddev[k] ** 2) for k, w in p.items())
        return F.cross_entropy(forward(p, x[index]), y[index]) + prior / n

    def chain(step) -> dict:
        """Two untimed steps, then ``num_steps`` timed one by one, on the same batches for every loop."""
        torch.manual_seed(0)
        epochs = -(-(num_steps + 2) * BATCH_SIZE // n)
        order = torch.cat([torch.randperm(n) for _ in range(epochs)])[: (num_steps + 2) * BATCH_SIZE]
        order = order.view(num_steps + 2, BATCH_SIZE)
        for index in order[:2]:
            step(index)
        walls = [timed(step, index).wall_s for index in order[2:]]
        times = summary(walls)
        return {"load_after": loadavg(), "examples_per_s": num_steps * BATCH_SIZE / sum(walls), "steps_s": times,
                "median_step_examples_per_s": BATCH_SIZE / times["median_s"],
                "best_step_examples_per_s": BATCH_SIZE / times["min_s"]}

    p = {k: w.clone().requires_grad_() for k, w in start.items()}

    def step(index):
        value = loss(p, index)
        for w in p.values():
            w.grad = None
        value.backward()
        with torch.no_grad():
            for w in p.values():
                w.add_(w.grad, alpha=-step_size).add_(torch.randn_like(w), alpha=noise_scale)

    with torch.no_grad():
        logits_diff = float((forward(p, x[:8]) - torch.from_numpy(d["logits"])).abs().max())
    out = {"network": name, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "max_abs_logit_diff": logits_diff, **chain(step),
           "finite": all(bool(torch.isfinite(w).all()) for w in p.values())}
    if bool(d["posteriors"]):
        out["posteriors"] = posteriors_chain(start, loss, step_size, n, chain)
    return out


def posteriors_chain(start: dict, loss, step_size: float, n: int, chain) -> dict:
    """``posteriors.sgmcmc.sgld`` (normal-computing's library) from ``start``, timed by ``chain``."""
    try:
        from importlib.metadata import version

        import posteriors
        import torch
    except ImportError as error:
        return {"skipped": f"posteriors not importable: {error} (pip install posteriors)"}
    try:
        transform = posteriors.sgmcmc.sgld.build(lambda p, index: (-loss(p, index), ()), lr=step_size,
                                                 temperature=1.0 / n)
        state = transform.init({k: w.clone() for k, w in start.items()})

        def step(index):
            transform.update(state, index, inplace=True)

        out = {"posteriors": version("posteriors"), **chain(step)}
        out["finite"] = all(bool(torch.isfinite(w).all()) for w in state.params.values())
        return out
    except Exception as error:  # its API moves between releases: report, do not fake
        return {"skipped": f"posteriors failed: {type(error).__name__}: {error}"}


def child(part: str, args) -> dict:
    import bayesjax as bj

    try:
        bj.data.load("fashion_mnist")
    except FileNotFoundError as error:
        return {"skipped": str(error)}
    if part == "chain":
        result = {"mlp": chain_part("mlp", args.mlp_steps, args.torch_python),
                  "cnn": chain_part("cnn", args.cnn_steps, args.torch_python)}
    elif part == "flops":
        result = flops_part(args.cnn_steps)
    elif part == "sweep":
        result = sweep_part(args.cnn_steps)
    elif part == "resnet":
        result = resnet_part(args.resnet_steps, args.torch_python)
    else:
        result = grid_part(args.grid_epochs)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--parts", default="chain,flops,sweep,grid,resnet")
    parser.add_argument("--cnn-steps", type=int, default=20)
    parser.add_argument("--mlp-steps", type=int, default=400)
    parser.add_argument("--grid-epochs", type=float, default=1.0)
    parser.add_argument("--resnet-steps", type=int, default=10)
    parser.add_argument("--torch-python", default=None,
                        help="interpreter with torch (and posteriors) for parts 1 and 5 (else $BENCH_TORCH_PYTHON, "
                             "else this one)")
    parser.add_argument("--torch-data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "torch":
        emit(torch_child(args.torch_data))
        return
    if args.child:
        emit(child(args.child, args))
        return
    report = {"machine": machine_facts(), "parts": {}}
    print(json.dumps(report["machine"], indent=1), flush=True)
    passed = ["--cnn-steps", str(args.cnn_steps), "--mlp-steps", str(args.mlp_steps),
              "--grid-epochs", str(args.grid_epochs), "--resnet-steps", str(args.resnet_steps)]
    passed += ["--torch-python", args.torch_python] if args.torch_python else []
    for part in args.parts.split(","):
        done = run_child(__file__, ["--child", part, *passed], timeout=3600)
        report["parts"][part] = done.result if done.result is not None else {"error": done.error}
        print(f"--- {part} ({done.wall_s:.1f} s, process)\n{json.dumps(report['parts'][part], indent=1)}", flush=True)
    if args.json:
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
