#!/usr/bin/env python
"""Cost of the 17 x 3 cold-posterior grid: one vmapped sweep against 51 separate ``bj.run`` calls.

    .venv/bin/python benchmarks/sweep.py [--steps 1000] [--seeds 3] [--json results/sweep_bench.json]

Workload, every cell: SGLD (learning rate 0.1 per example, drift unchanged and noise scaled by
sqrt(T)) on the digits MLP 64-50-50-10 with a N(0, 1) prior, categorical
likelihood and posterior tempering at T from the 17-point grid of Wenzel et
al. (2020), T = 10^-4 ... 10^0, and seeds 0, 1, 2; 2 chains of ``--steps``
steps (default 1000, half of the command's default budget) on minibatches of
128, burn-in half the steps, every 25th position kept in a buffer of 20 per
chain; the Bayesian model average over 20 pooled draws scored by accuracy, NLL,
ECE, Brier and OOD AUROC (test digits against the test digits rotated 90
degrees).

Both ways run in this one process, cold (every compile counted, JAX's
persistent compilation cache off), on the host split into 2 XLA devices
(``--xla_force_host_platform_device_count=2``, set before JAX starts unless
``XLA_FLAGS`` already sets a count):

1. vmapped: ``bayesjax.experiments.sweep.run_sweep`` with its default
   chunking (51 cells in 7 calls of 8 cells, the last padded, each call's
   cells sharded over the devices), every cell written to disk as it finishes. It also computes the
   SG-MCMC honest-temperature checks, which the separate way skips.
2. separate: a Python loop over the 51 cells, each one ``bj.run`` with the
   cell's keys and its 2 chains sharded over the devices
   (``mesh=bj.sharding.mesh(chains=2)``), ``Posterior.sample`` and one jitted
   evaluation shared by all cells: what a user writes without the sweep.
   Each cell's log-joint is a new closure, so every ``bj.run`` compiles.

Printed: wall and process CPU time of each way and their ratio (target: the
vmapped way >= 2.5x faster in wall time on 2 cores), the number of programs
compiled for the sweep's chunk (one) and the XLA compiles of each way (both
counted from JAX's compile events, ``jax.monitoring``), and the
largest difference between the two ways' accuracy and NLL over the cells
(they run the same computation with the same keys). To show how much of the
gain is compilation, both ways are also timed without compiles, alternating,
best of ``--repeats``: the sweep rerun into a fresh folder (its program
cached), and 51 x the wall time of one ``bj.run`` call whose program is cached
(sampling, scoring and the 5 padded cells left out, which favours the
separate way).

Almost all of the run is the separate way's compiles (several programs per
``bj.run`` call); 1000 steps per chain keep the computation itself a fair
share of a cell (half the command's default). The figures measured so far
are in benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import tempfile
import warnings

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax import monitoring  # noqa: E402

import bayesjax as bj  # noqa: E402

bj.sharding.use_all_cpu_cores(2)  # importing bayesjax does not start JAX's backend: the host can still be split

from _common import timed  # noqa: E402

from bayesjax.experiments import sweep  # noqa: E402

TARGET_RATIO = 2.5
NUM_DEVICES = jax.device_count()
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
compiled: list[str] = []
"""The name of every program XLA compiled in this process (``jit(run_chunk)``, ...), in order."""


def record_compile(event: str, duration: float, **kwargs) -> None:
    """A JAX monitoring listener: notes each XLA compile by the name of the jitted function."""
    if event == COMPILE_EVENT:
        compiled.append(str(kwargs.get("fun_name", "")))


monitoring.register_event_duration_secs_listener(record_compile)


def configuration(steps: int, seeds: int) -> sweep.SweepConfig:
    """The sweep's settings for the benchmark (see the module docstring)."""
    return sweep.SweepConfig(method="sgld", seeds=tuple(range(seeds)), num_steps=steps, burnin=steps // 2,
                             thin=25, num_predictive_samples=20).validate()


def timed_compiles(fn):
    """``(result, wall seconds, process CPU seconds, names of the programs XLA compiled)`` of ``fn()``."""
    start = len(compiled)
    timing = timed(fn)
    return timing.result, timing.wall_s, timing.cpu_s, compiled[start:]


def vmapped(config: sweep.SweepConfig) -> tuple[list[dict], list[str]]:
    """The sweep into a fresh folder: its records and the warnings it gave."""
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = sweep.run_sweep(config, out, progress=False)
    return records, [str(w.message) for w in caught]


class Separate:
    """The cells of ``config`` one at a time through the public API: ``bj.run``, ``Posterior.sample``, scoring.

    Keys as in :func:`bayesjax.experiments.sweep.cells.cell`: ``split(key(seed), 3)`` gives the run and draw keys.
    """

    def __init__(self, config: sweep.SweepConfig, ds, x_ood):
        self.config, self.ds, self.x_ood = config, ds, x_ood
        self.model = bj.models.mlp(list(config.hidden), ds.num_classes)
        self.likelihood = bj.likelihoods.categorical()
        self.mesh = bj.sharding.mesh(chains=NUM_DEVICES) if config.num_chains % NUM_DEVICES == 0 else None
        apply, likelihood, x = self.model.apply, self.likelihood, ds.x_train
        self.init = lambda key: self.model.init(key, x[:1])  # one function: bj.run's compile cache keys on it
        self.score = jax.jit(lambda samples, x_test, y_test, x_ood: sweep.evaluate(
            bj.predictive(apply, samples, x_test, likelihood), bj.predictive(apply, samples, x_ood, likelihood),
            y_test))

    def algorithm(self, temperature: float) -> bj.Algorithm:
        c = self.config
        lj = bj.log_joint(self.model.apply, bj.priors.gaussian(c.prior_scale), self.likelihood, len(self.ds.y_train),
                          temperature=temperature, tempering=c.tempering)
        return bj.sgld(lj, c.step_size)

    def run(self, algorithm: bj.Algorithm, seed: int) -> bj.Posterior:
        c, x, y = self.config, self.ds.x_train, self.ds.y_train
        run_key = jax.random.split(jax.random.key(seed), 3)[0]
        return bj.run(run_key, algorithm, self.init, (x, y), num_steps=c.num_steps,
                      batch_size=c.batch_size, num_chains=c.num_chains, burnin=c.burnin, thin=c.thin,
                      num_samples=c.num_predictive_samples, progress=False, mesh=self.mesh)

    def cells(self) -> list[dict]:
        """Every cell: a new log-joint per temperature, so every ``bj.run`` compiles (a user's loop)."""
        records = []
        for temperature, seed in self.config.cells():
            post = self.run(self.algorithm(temperature), seed)
            sample_key = jax.random.split(jax.random.key(seed), 3)[1]
            samples = post.sample(sample_key, self.config.num_predictive_samples)
            values = jax.device_get(self.score(samples, self.ds.x_test, self.ds.y_test, self.x_ood))
            records.append({"temperature": temperature, "seed": seed, **{k: float(v) for k, v in values.items()}})
        return records

    def compiled_run(self):
        """A function timing one cell's ``bj.run`` whose program is already compiled (the same algorithm)."""
        algorithm = self.algorithm(1.0)
        jax.block_until_ready(self.run(algorithm, 0).state)
        return lambda: jax.block_until_ready(self.run(algorithm, 0).state)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="SGLD steps per chain and cell")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="timings without compiles: best of this many")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    jax.config.update("jax_enable_compilation_cache", False)
    config = configuration(args.steps, args.seeds)
    ds = bj.data.load(config.dataset)  # data and heavy imports before any timing
    x_ood = sweep.ood_inputs(ds.x_test, config.ood)
    jax.block_until_ready(jax.device_put(np.zeros(1)))
    cells = len(config.cells())
    per_chunk = sweep.chunk_size(cells, NUM_DEVICES)
    print(f"devices: {NUM_DEVICES} x {jax.devices()[0].platform}; cores: {os.cpu_count()}; "
          f"grid: {len(config.temperatures)} temperatures x {len(config.seeds)} seeds = {cells} cells")
    print(f"cell: SGLD, digits MLP {config.hidden}, {config.num_chains} chains x {config.num_steps} steps, "
          f"batch {config.batch_size}, burn-in {config.burnin}, thin {config.thin}, "
          f"{config.num_predictive_samples} predictive draws")

    (with_sweep, messages), sweep_wall, sweep_cpu, sweep_programs = timed_compiles(lambda: vmapped(config))
    chunk = sweep.run_chunk.__name__
    chunk_programs = sum(name in (f"jit({chunk})", f"jit_{chunk}") for name in sweep_programs)  # JAX's two spellings
    sweep_compiles = len(sweep_programs)
    separate = Separate(config, ds, x_ood)
    one_by_one, loop_wall, loop_cpu, loop_programs = timed_compiles(separate.cells)
    loop_compiles = len(loop_programs)
    # Without compiles, interleaved (load from other processes falls on both alike), best of --repeats.
    compiled_run, sweep_steady, loop_steady = separate.compiled_run(), math.inf, math.inf
    for _ in range(args.repeats):
        sweep_steady = min(sweep_steady, timed(vmapped, config).wall_s)
        loop_steady = min(loop_steady, cells * timed(compiled_run).wall_s)

    ratio = loop_wall / sweep_wall
    difference = {name: max(abs(a[name] - b[name]) for a, b in zip(with_sweep, one_by_one))
                  for name in ("accuracy", "nll")}
    identical = sum(all(a[k] == b[k] for k in sweep.METRICS) for a, b in zip(with_sweep, one_by_one))
    print(f"vmapped sweep ({-(-cells // per_chunk)} calls of {per_chunk} cells): {sweep_wall:7.1f} s wall, "
          f"{sweep_cpu:7.1f} s CPU; compiled chunk programs: {chunk_programs}; XLA compiles: {sweep_compiles}; "
          f"rerun compiled: {sweep_steady:.1f} s")
    print(f"{cells} separate bj.run calls:{'':10}{loop_wall:7.1f} s wall, {loop_cpu:7.1f} s CPU; "
          f"XLA compiles: {loop_compiles}; {cells} x one compiled bj.run: {loop_steady:.1f} s")
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"speed-up (wall): {ratio:.2f}x (target >= {TARGET_RATIO}x: {verdict}); CPU-time ratio "
          f"{loop_cpu / sweep_cpu:.2f}x; without compiles (both compiled already): "
          f"{loop_steady / sweep_steady:.2f}x")
    print(f"agreement over {cells} cells: max |accuracy difference| {difference['accuracy']:.2g}, "
          f"max |NLL difference| {difference['nll']:.2g}; {identical} cells with identical metrics")
    print(f"the sweep gave {len(messages)} warning(s)" + "".join(f"\n  {m[:200]}" for m in messages))
    if args.json:
        result = {"config": {"steps": config.num_steps, "chains": config.num_chains, "cells": cells,
                             "devices": NUM_DEVICES},
                  "vmapped": {"wall_s": sweep_wall, "cpu_s": sweep_cpu, "chunk_programs": chunk_programs,
                              "xla_compiles": sweep_compiles, "compiled_rerun_s": sweep_steady},
                  "separate": {"wall_s": loop_wall, "cpu_s": loop_cpu, "xla_compiles": loop_compiles,
                               "compiled_runs_s": loop_steady},
                  "ratio": ratio, "compiled_ratio": loop_steady / sweep_steady,
                  "max_abs_difference": difference, "identical_cells": identical}
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
