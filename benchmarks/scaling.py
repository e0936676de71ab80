#!/usr/bin/env python
"""Chains over devices: SGLD chain-steps per second for many chains on 1, 2, 4 devices.

Workload: the digits MLP of ``_sgld_workload.py`` (64-50-50-10, batch 128,
SGLD step 1e-4, T = 1), run by ``bj.run(..., num_chains=C, mesh=...)`` with the
chain axis split over a :func:`bayesjax.sharding.mesh` of D devices, inside
one jit. Each device count runs in its own process, because the host's device
split (``--xla_force_host_platform_device_count``) is fixed when JAX starts.
Throughput is the best of ``--repeats`` timed calls after a compiling call;
speedup and efficiency (speedup / D) are relative to one device at the same
chain count, measured in the same script. The sample buffer holds one position
per chain (``num_samples=1``) so that memory stays flat at 1024+ chains; the
buffer's own cost is ``benchmarks/sgmcmc.py``'s business.

On an accelerator (``--platform gpu``) only the devices present are used, and
``--hand`` also times the hand-written loop of ``_sgld_workload.py`` at the
same chain counts, for the ratio bj.run / hand-written on that card.
:func:`measure` is also section 5 of ``benchmarks/sgmcmc.py``. The figures
measured so far are in benchmarks/README.md.

Usage::

    .venv/bin/python benchmarks/scaling.py                        # CPU: 1, 2, 4 forced devices
    .venv/bin/python benchmarks/scaling.py --devices 1,2 --chains 64,256 --steps 50
    python benchmarks/scaling.py --platform gpu --chains 1024,4096,16384 --steps 500 --hand
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

from _common import emit, loadavg, run_child, timed
from _sgld_workload import BATCH_SIZE, hand_runner, setup


def child(num_devices: int, chains: list[int], num_steps: int, repeats: int, hand: bool,
          samples_path: str | None = None) -> dict:
    """One device count, in this process (its ``XLA_FLAGS`` set by the parent): figures per chain count.

    JAX is imported here, after the parent has fixed the host's device split
    in this process's environment. With ``samples_path``, the final chain states (positions and
    kept samples) of the compiling call (key 0) are saved there per chain count, for the parent to
    compare across device counts.
    """
    import jax
    import numpy as np

    import bayesjax as bj

    ds, params, algo = setup()
    data = (ds.x_train, ds.y_train)
    mesh = bj.sharding.mesh(chains=num_devices)
    hand_run = hand_runner(ds, params, num_steps) if hand else None
    out = {"devices": [str(d) for d in jax.devices()][:num_devices], "rows": {}}
    samples = {}
    for c in chains:
        def bj_run(key, c=c):
            post = bj.run(key, algo, params, data, num_steps=num_steps, batch_size=BATCH_SIZE,
                          num_chains=c, num_samples=1, progress=False, mesh=mesh)
            jax.block_until_ready(post.state)
            samples.setdefault(str(c), np.concatenate([np.asarray(leaf).ravel() for leaf in jax.tree.leaves(post.state)
                                                       if jax.numpy.issubdtype(leaf.dtype, jax.numpy.floating)]))

        impls = {"bayesjax": bj_run} | ({"hand": lambda key, c=c: hand_run(key, c)} if hand else {})
        row = {}
        for name, fn in impls.items():
            first = timed(fn, jax.random.key(0)).wall_s
            times = [timed(fn, jax.random.key(r + 1)).wall_s for r in range(repeats)]
            row[name] = {"chain_steps_per_s": c * num_steps / min(times), "first_call_s": first,
                         "steady_s": min(times)}
        out["rows"][str(c)] = row
        print(f"  D={num_devices} C={c}: " + ", ".join(
            f"{k} {v['chain_steps_per_s']:,.0f} chain-steps/s" for k, v in row.items()), file=sys.stderr, flush=True)
    if samples_path:
        np.savez(samples_path, **samples)
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--devices", default=None, help="device counts (default: 1,2,4 on cpu; 1 on gpu)")
    parser.add_argument("--chains", default="64,256,1024", help="chain counts (default 64,256,1024)")
    parser.add_argument("--steps", type=int, default=100, help="SGLD steps per chain (default 100)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls after the compiling one (default 2)")
    parser.add_argument("--hand", action="store_true", help="also time the hand-written loop (one device)")
    parser.add_argument("--json", metavar="OUT", help="write the figures to this JSON file")
    parser.add_argument("--_child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--_samples", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    chains = [int(c) for c in args.chains.split(",")]
    if args._child is not None:
        emit(child(args._child, chains, args.steps, args.repeats, args.hand and args._child == 1,
                   args._samples))
        return 0
    device_counts = [int(d) for d in (args.devices or ("1,2,4" if args.platform == "cpu" else "1")).split(",")]
    results = {"settings": vars(args)} | measure(device_counts, chains, args.steps, args.repeats, args.hand,
                                                 args.platform)
    print_table(results, chains, device_counts)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def measure(device_counts: list[int], chains: list[int], num_steps: int, repeats: int, hand: bool = False,
            platform: str = "cpu") -> dict:
    """One child process per device count (the host split is fixed when JAX starts); their figures by device count."""
    results = {"load_start": loadavg(), "by_devices": {}}
    start = time.perf_counter()
    folder = tempfile.mkdtemp(prefix="bayesjax-scaling-")
    for d in device_counts:
        env = dict(os.environ, JAX_PLATFORMS=platform if platform == "cpu" else "cuda")
        if platform == "cpu":
            flags = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
            env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={d}".strip()
        print(f"[{d} device(s)]", flush=True)
        child_args = ["--_child", str(d), "--chains", ",".join(map(str, chains)), "--steps", str(num_steps),
                      "--repeats", str(repeats), "--_samples", os.path.join(folder, f"{d}.npz")
                      ] + (["--hand"] if hand else [])
        finished = run_child(__file__, child_args, env=env, timeout=3600)
        if finished.result is None:
            print(f"  failed: {finished.error}")
            continue
        results["by_devices"][str(d)] = finished.result
    results["agreement"] = agreement(folder, list(results["by_devices"]))
    shutil.rmtree(folder)
    results["load_end"] = loadavg()
    results["wall_s"] = time.perf_counter() - start
    return results


def agreement(folder: str, device_counts: list[str]) -> dict:
    """Per device count and chain count: the largest absolute difference of its samples (same key) from
    those of the first device count, and whether they are bitwise equal."""
    import numpy as np

    if not device_counts:
        return {}
    with np.load(os.path.join(folder, f"{device_counts[0]}.npz")) as f:
        reference = dict(f)
    out = {}
    for d in device_counts[1:]:
        with np.load(os.path.join(folder, f"{d}.npz")) as f:
            out[d] = {c: {"max_abs_diff": float(np.max(np.abs(f[c] - reference[c]))),
                          "bitwise": bool(np.array_equal(f[c], reference[c])),
                          "max_abs_value": float(np.max(np.abs(reference[c])))} for c in reference}
    return out


def print_table(results: dict, chains: list[int], device_counts: list[int]) -> None:
    """Chain-steps/s, speedup and efficiency per chain count and device count."""
    runs = results["by_devices"]
    print(f"\nSGLD chain-steps/s, digits MLP, {results['settings']['steps']} steps, load "
          f"{results['load_start']} -> {results['load_end']}, wall {results['wall_s']:.0f}s")
    if runs:
        print("devices: " + "; ".join(f"{d}: {', '.join(r['devices'])}" for d, r in runs.items()))
    print(f"{'chains':>7} {'devices':>7} {'chain-steps/s':>14} {'speedup':>8} {'efficiency':>10} {'vs hand':>8}")
    for c in chains:
        base = runs.get("1", {}).get("rows", {}).get(str(c), {}).get("bayesjax")
        for d in device_counts:
            row = runs.get(str(d), {}).get("rows", {}).get(str(c))
            if row is None:
                print(f"{c:>7} {d:>7} {'failed':>14}")
                continue
            rate = row["bayesjax"]["chain_steps_per_s"]
            speedup = rate / base["chain_steps_per_s"] if base else float("nan")
            hand = row.get("hand")
            vs_hand = f"{row['bayesjax']['steady_s'] / hand['steady_s']:.2f}x" if hand else ""
            print(f"{c:>7} {d:>7} {rate:>14,.0f} {speedup:>7.2f}x {speedup / d:>10.2f} {vs_hand:>8}")
    print("speedup = chain-steps/s over one device's; efficiency = speedup / devices; "
          "vs hand = bj.run time / hand-written loop time (1 device; lower is better)")
    for d, by_chains in results.get("agreement", {}).items():
        print(f"samples on {d} devices vs {device_counts[0]} (same key): "
              + "; ".join(f"{c} chains {describe_agreement(a)}" for c, a in by_chains.items()))


def describe_agreement(a: dict) -> str:
    difference = "bitwise equal" if a["bitwise"] else f"max |diff| {a['max_abs_diff']:.1e}"
    return f"{difference} (max |weight| {a['max_abs_value']:.2f})"

if __name__ == "__main__":
    sys.exit(main())
