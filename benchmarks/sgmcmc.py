#!/usr/bin/env python
"""SGLD throughput: ``bayesjax.run`` against a hand-written JAX loop (and posteriors).

Workload: ``_sgld_workload.py`` (the digits MLP 64-50-50-10, minibatches
of 128, SGLD with step size 1e-4, Gaussian prior, categorical likelihood,
T = 1).

What is measured, all in this one script so ratios share one machine state:

1. Steady-state chain-steps per second for 1, 8 and 64 chains, ``bj.run(...,
   progress=False)`` (default sample buffer: every position is kept) next to a
   hand-written loop (``lax.scan`` over steps of a ``vmap`` over chains,
   batched log-likelihood, minibatches drawn inside the jit from per-epoch
   permutations, the same update). Steady state = the best of ``--repeats``
   calls after the first; the first call's excess over the steady time is
   reported as its compile time.
   Measurements of the implementations are interleaved, so load from other
   processes falls on both alike.
2. 64 vmapped chains (one ``bj.run``) against a Python loop of 64 jitted
   single-chain ``bj.run`` calls.
3. Fixed costs in fresh processes (subprocesses of this script): compile time
   of the first call and whole-process time (interpreter start to exit) of a
   short run, with JAX's persistent compilation cache in a temporary folder,
   first cold (the process populates it) then warm.
4. posteriors (PyTorch) SGLD on the same MLP, if torch and posteriors are
   importable here or in the interpreter given by ``--torch-python``: one
   chain in a Python loop, and ``--loop-chains`` chains under
   ``torch.func.vmap``, each with torch's default thread count and with one
   thread (the better is compared; on a loaded machine torch's OpenMP threads
   can collapse).
5. The most chains once more with ``num_samples=1``, on one device and
   sharded over the host split into one XLA device per usable core (each in a
   child process of ``benchmarks/scaling.py``), as the ``bayesjax`` command
   runs them; one XLA:CPU device runs this program on one core.

``bj.run(num_samples=1)`` and ``bj.run(num_samples=1, info_every=0)``
(``--buffer-variant``) separate the costs of the default sample buffer (every
position kept) and of the per-step info (the log density, which the
hand-written loop never computes) from the driver's; with it the hand-written
loop is also timed keeping every position and log density, the equal-work
baseline of the default ``bj.run``. Wall-time ratios
are the targets; CPU-time ratios are printed beside them because they suffer
less from other processes on a shared machine.

Usage::

    .venv/bin/python benchmarks/sgmcmc.py                       # full default run
    .venv/bin/python benchmarks/sgmcmc.py --steps 200 --chains 1,8 --repeats 2
    .venv/bin/python benchmarks/sgmcmc.py --json results/sgmcmc.json \\
        --torch-python /tmp/benchvenv/bin/python

``--torch-python`` points at a separate environment with ``pip install
torch==2.13.0 posteriors`` (so the project's venv stays free of PyTorch);
it can also be given as the environment variable ``BENCH_TORCH_PYTHON``.
The code of section 4 is in ``_sgld_posteriors.py``, the printed report in
``_sgld_report.py``, section 5's children in ``scaling.py``; the figures
measured so far are in benchmarks/README.md. JAX and bayesjax are imported
inside the functions, because the fresh-process children of section 3 time
that import.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import _sgld_posteriors
import _sgld_report
import scaling
from _common import emit, loadavg, machine_facts, run_child, summary, timed
from _sgld_workload import BATCH_SIZE, LEARNING_RATE, bayesjax_runner, hand_runner, setup


# --------------------------------------------------------------------------- #
# Child processes (JAX is imported inside them: the fresh process times the import)
# --------------------------------------------------------------------------- #
def child_fresh(impl: str, cache_dir: str | None, num_steps: int, num_chains: int) -> dict:
    """A fresh process: import, set up, the first call (compile + run), then a second call."""
    start = time.perf_counter()
    import jax

    if cache_dir:
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    import bayesjax  # noqa: F401  (the import a user pays)

    t_import = time.perf_counter() - start
    start = time.perf_counter()
    ds, params, algo = setup()
    run = bayesjax_runner(ds, params, algo, num_steps) if impl == "bayesjax" else hand_runner(ds, params, num_steps)
    t_setup = time.perf_counter() - start
    key = jax.random.key(1)
    t_first = timed(run, key, num_chains).wall_s
    t_second = timed(run, key, num_chains).wall_s
    return {"import_s": t_import, "setup_s": t_setup, "first_call_s": t_first, "second_call_s": t_second}


# --------------------------------------------------------------------------- #
# Sections of the main process
# --------------------------------------------------------------------------- #
def section_throughput(args, chains, results):
    """Section 1: steady-state chain-steps/s of every implementation, interleaved; returns the two runners."""
    import jax

    ds, params, algo = setup()
    results["model"] = {"num_params": sum(int(w.size) for w in jax.tree.leaves(params)),
                        "num_data": int(len(ds.y_train)), "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE}
    bj_run = bayesjax_runner(ds, params, algo, args.steps)
    hand_run = hand_runner(ds, params, args.steps)
    impls = {
        "bayesjax": lambda key, c: bj_run(key, c),
        "hand": lambda key, c: hand_run(key, c),
    }
    if args.buffer_variant:
        impls["bayesjax_num_samples_1"] = lambda key, c: bj_run(key, c, num_samples=1)
        impls["bayesjax_lean"] = lambda key, c: bj_run(key, c, num_samples=1, info_every=0)
        hand_recording = hand_runner(ds, params, args.steps, record=True)
        impls["hand_recording"] = lambda key, c: hand_recording(key, c)
    key = jax.random.key(0)
    table = {}
    for c in chains:
        first, times, cpu = {}, {name: [] for name in impls}, {name: [] for name in impls}
        for name, fn in impls.items():
            first[name] = timed(fn, key, c).wall_s
        for r in range(args.repeats):  # interleaved: background load hits every implementation alike
            for name, fn in impls.items():
                timing = timed(fn, jax.random.fold_in(key, r + 1), c)
                times[name].append(timing.wall_s)
                cpu[name].append(timing.cpu_s)
        row = {}
        for name in impls:
            steady = min(times[name])
            row[name] = {**summary(times[name]), "first_call_s": first[name],
                         "compile_s": first[name] - steady,
                         "chain_steps_per_s": c * args.steps / steady,
                         "cpu_min_s": min(cpu[name]), "cpu_all_s": cpu[name]}
        row["ratio_bayesjax_over_hand"] = row["bayesjax"]["min_s"] / row["hand"]["min_s"]
        row["cpu_ratio_bayesjax_over_hand"] = row["bayesjax"]["cpu_min_s"] / row["hand"]["cpu_min_s"]
        table[str(c)] = row
        print(f"  chains={c:<3d} bayesjax {row['bayesjax']['min_s']:.3f}s  hand {row['hand']['min_s']:.3f}s"
              f"  ratio {row['ratio_bayesjax_over_hand']:.2f}  (load {loadavg()})", flush=True)
    results["throughput"] = table
    return bj_run, hand_run


def section_loop(args, bj_run, hand_run, results):
    """Section 2: ``--loop-chains`` vmapped chains against a Python loop of as many single-chain runs."""
    import jax

    n = args.loop_chains
    key = jax.random.key(2)
    vmapped = results["throughput"].get(str(n))
    out = {"num_chains": n}
    runners = {"bayesjax": bj_run}
    if args.hand_loop:
        runners["hand"] = hand_run
    for name, run in runners.items():
        run(key, 1)  # make sure the single-chain program is compiled
        if vmapped is None:
            run(key, n)

        def loop():
            for k in range(n):
                run(jax.random.fold_in(key, k), 1)

        loop_times = [timed(loop).wall_s for _ in range(args.loop_repeats)]
        vmap_time = (vmapped[name]["min_s"] if vmapped
                     else min(timed(run, key, n).wall_s for _ in range(args.repeats)))
        out[name] = {"loop": summary(loop_times), "vmapped_min_s": vmap_time,
                     "gain": min(loop_times) / vmap_time}
        print(f"  {name}: loop of {n} single-chain runs {min(loop_times):.2f}s, "
              f"{n} vmapped chains {vmap_time:.2f}s, gain {out[name]['gain']:.2f}x", flush=True)
    if "hand" not in out:  # a derived estimate, labelled as such
        one = results["throughput"].get("1", {}).get("hand")
        if one and vmapped:
            out["hand_estimate_from_1_chain"] = n * one["min_s"] / vmapped["hand"]["min_s"]
    results["loop"] = out


def section_fresh_processes(args, results):
    """Section 3: compile and whole-process time of fresh children, persistent cache cold then warm."""
    out = {"steps": args.steps, "chains": args.process_chains}
    with tempfile.TemporaryDirectory(prefix="bayesjax-bench-cache-") as cache_root:
        for impl in ("bayesjax", "hand"):
            cache_dir = os.path.join(cache_root, impl)
            for phase in ("cold", "warm"):  # cold populates the empty cache, warm reads it
                child_args = ["--_child", impl, "--_cache", cache_dir, "--steps", str(args.steps),
                              "--chains", str(args.process_chains)]
                child = run_child(__file__, child_args)
                if child.result is None:
                    out[f"{impl}_{phase}"] = {"error": child.error}
                    print(f"  {impl} {phase}: FAILED\n{child.error}", flush=True)
                    continue
                data = child.result
                data["process_wall_s"] = child.wall_s
                data["short_run_process_s"] = child.wall_s - data["second_call_s"]
                data["compile_s"] = data["first_call_s"] - data["second_call_s"]
                out[f"{impl}_{phase}"] = data
                print(f"  {impl:8s} {phase}: compile {data['compile_s']:.2f}s, "
                      f"process {data['short_run_process_s']:.2f}s (load {loadavg()})", flush=True)
            try:
                out[f"{impl}_cache_entries"] = sorted(os.listdir(cache_dir))
            except OSError:
                out[f"{impl}_cache_entries"] = []
    results["fresh_process"] = out


def section_host_split(args, chains, results):
    """Section 5: the most chains, on one device and sharded over the host split into one device per core.

    One XLA:CPU device runs a program on one core at these sizes; the
    ``bayesjax`` command splits the host into one device per core and shards
    the chains over them (``bj.sharding.mesh``). Both runs keep one sample
    (``num_samples=1``), as posteriors' loop keeps only the current state.
    """
    from bayesjax.sharding import usable_cores

    cores = usable_cores()
    if cores < 2:
        results["host_split"] = {"skipped": f"{cores} usable core"}
        return
    results["host_split"] = scaling.measure([1, cores], [max(chains)], args.steps, args.repeats)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000, help="SGLD steps per chain (default 1000)")
    parser.add_argument("--chains", default="1,8,64", help="comma-separated chain counts (default 1,8,64)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls after the first (default 2)")
    parser.add_argument("--json", metavar="OUT", help="write every figure to this JSON file")
    parser.add_argument("--loop-chains", type=int, default=64, help="chains for vmap vs Python loop (default 64)")
    parser.add_argument("--loop-repeats", type=int, default=1, help="timed Python loops (default 1)")
    parser.add_argument("--hand-loop", action="store_true", help="also time the Python loop of the hand-written run")
    parser.add_argument("--process-chains", type=int, default=1, help="chains of the fresh-process short run")
    parser.add_argument("--buffer-variant", action="store_true",
                        help="also time bj.run(num_samples=1) and bj.run(num_samples=1, info_every=0), to tell the "
                             "costs of the sample buffer and of the per-step info from the driver's")
    parser.add_argument("--skip-loop", action="store_true", help="skip vmap vs Python loop")
    parser.add_argument("--skip-process", action="store_true", help="skip fresh-process timings")
    parser.add_argument("--skip-host-split", action="store_true",
                        help="skip the most chains sharded over the host split into one device per core")
    parser.add_argument("--torch-python", help="interpreter with torch + posteriors (else $BENCH_TORCH_PYTHON)")
    parser.add_argument("--posteriors-steps", type=int, default=200, help="steps per 1-chain posteriors timing")
    parser.add_argument("--posteriors-vmap-steps", type=int, default=50,
                        help="steps per posteriors timing of --loop-chains chains under torch.func.vmap")
    parser.add_argument("--no-posteriors-vmap", action="store_true", help="skip posteriors under torch.func.vmap")
    parser.add_argument("--_child", choices=("bayesjax", "hand"), help=argparse.SUPPRESS)
    parser.add_argument("--_cache", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    chains = [int(c) for c in args.chains.split(",") if c.strip()]
    if args._child:
        emit(child_fresh(args._child, args._cache, args.steps, chains[0]))
        return 0

    wall_start = time.perf_counter()
    results = {"machine": machine_facts(), "settings": vars(args) | {"chains": chains}}
    print(f"[1/5] steady-state throughput, chains {chains}", flush=True)
    bj_run, hand_run = section_throughput(args, chains, results)
    if not args.skip_loop:
        print(f"[2/5] {args.loop_chains} vmapped chains vs a Python loop", flush=True)
        section_loop(args, bj_run, hand_run, results)
    if not args.skip_process:
        print("[3/5] fresh processes (persistent compilation cache)", flush=True)
        section_fresh_processes(args, results)
    print("[4/5] posteriors (PyTorch)", flush=True)
    _sgld_posteriors.section(args, results)
    if not args.skip_host_split:
        print(f"[5/5] {max(chains)} chains sharded over the host's cores", flush=True)
        section_host_split(args, chains, results)
    results["machine"]["load_end"] = loadavg()
    results["benchmark_wall_s"] = time.perf_counter() - wall_start
    _sgld_report.print_report(args, chains, results)
    print(f"\nbenchmark wall time {results['benchmark_wall_s']:.0f}s")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
