#!/usr/bin/env python
"""SGLD throughput: ``bayesjax.run`` against a hand-written JAX loop (and posteriors).

Workload: the 2-hidden-layer MLP (50 units each, 10 outputs) on digits,
minibatches of 128, SGLD with step size 1e-4, Gaussian prior (scale 1),
categorical likelihood, T = 1:

    theta <- theta + eps * grad log p(theta | batch) + sqrt(2 eps) xi

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
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

STEP_SIZE = 1e-4
BATCH_SIZE = 128
HIDDEN = (50, 50)
NUM_CLASSES = 10
PRIOR_SCALE = 1.0
CHILD_TAG = "BENCH_JSON "

# Targets from the benchmark issue.
TARGET_HAND_RATIO = 1.1  # bayesjax time / hand-written time <= 1.1
TARGET_VMAP_GAIN = 1.3  # 64 vmapped chains >= 1.3x the chain-steps/s of a Python loop


# --------------------------------------------------------------------------- #
# The workload (JAX side)
# --------------------------------------------------------------------------- #
def setup():
    """Data, model, initial parameters, log-joint and SGLD, as a user writes them."""
    import jax

    import bayesjax as bj

    ds = bj.data.load("digits")
    model = bj.models.mlp(list(HIDDEN), num_outputs=NUM_CLASSES)
    params = model.init(jax.random.key(0), ds.x_train[:1])
    lj = bj.log_joint(
        model.apply,
        bj.priors.gaussian(scale=PRIOR_SCALE),
        bj.likelihoods.categorical(),
        num_data=len(ds.y_train),
    )
    algo = bj.sgld(lj, STEP_SIZE)
    return ds, params, algo


def bayesjax_runner(ds, params, algo, num_steps):
    """``(key, num_chains, **run_options) -> None``: one blocking ``bj.run``."""
    import jax

    import bayesjax as bj

    data = (ds.x_train, ds.y_train)

    def run(key, num_chains, **options):
        post = bj.run(key, algo, params, data, num_steps=num_steps, batch_size=BATCH_SIZE,
                      num_chains=num_chains, progress=False, **options)
        jax.block_until_ready((post.state, post.info))

    return run


def hand_runner(ds, params, num_steps, record=False):
    """The hand-written loop: ``(key, num_chains) -> None`` (blocking).

    Plain ``jnp`` MLP on the same initial weights, the same tempered target at
    T = 1 (N/B-scaled minibatch log-likelihood plus Gaussian log-prior),
    per-chain per-epoch permutations drawn inside the jit, noise drawn leaf by
    leaf, and the same update equation; it keeps only the final positions, or
    with ``record=True`` every position and the per-step log density (what
    ``bj.run`` returns by default).
    """
    import functools

    import jax
    import jax.numpy as jnp

    num_data = len(ds.y_train)
    x = jnp.asarray(ds.x_train.reshape(num_data, -1))
    y = jnp.asarray(ds.y_train)
    steps_per_epoch = num_data // BATCH_SIZE
    noise_scale = (2 * STEP_SIZE) ** 0.5

    def forward(p, xb):
        h = jax.nn.relu(xb @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        h = jax.nn.relu(h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])
        return h @ p["Dense_2"]["kernel"] + p["Dense_2"]["bias"]

    def log_joint(p, xb, yb):
        log_probs = jax.nn.log_softmax(forward(p, xb))
        log_lik = num_data * jnp.mean(jnp.take_along_axis(log_probs, yb[:, None], axis=1))
        log_prior = sum(jnp.sum(-0.5 * (w / PRIOR_SCALE) ** 2) for w in jax.tree.leaves(p))
        return log_lik + log_prior

    def update(key, p, xb, yb):
        value, grad = jax.value_and_grad(log_joint)(p, xb, yb)
        leaves, treedef = jax.tree.flatten(p)
        keys = jax.random.split(key, len(leaves))
        noise = treedef.unflatten([jax.random.normal(k, w.shape, w.dtype) for k, w in zip(keys, leaves)])
        return jax.tree.map(lambda w, g, n: w + STEP_SIZE * g + noise_scale * n, p, grad, noise), value

    @functools.partial(jax.jit, static_argnames=("num_chains",))
    def sample(key, params, x, y, num_chains):
        chain_keys = jax.random.split(key, num_chains)
        perm_keys, step_keys = jax.vmap(lambda k: jax.random.split(k, 2))(chain_keys).swapaxes(0, 1)
        positions = jax.tree.map(lambda w: jnp.broadcast_to(w, (num_chains,) + w.shape), params)

        def body(carry, t):
            positions, perms = carry
            position = t % steps_per_epoch
            perms = jax.lax.cond(
                position == 0,
                lambda: jax.vmap(lambda k: jax.random.permutation(
                    jax.random.fold_in(k, t // steps_per_epoch), num_data))(perm_keys).astype(jnp.int32),
                lambda: perms,
            )
            index = jax.lax.dynamic_slice_in_dim(perms, position * BATCH_SIZE, BATCH_SIZE, axis=1)
            keys = jax.vmap(lambda k: jax.random.fold_in(k, t))(step_keys)
            positions, log_density = jax.vmap(update)(keys, positions, x[index], y[index])
            return (positions, perms), (positions, log_density) if record else None

        perms = jnp.zeros((num_chains, num_data), jnp.int32)
        (positions, _), trace = jax.lax.scan(body, (positions, perms), jnp.arange(num_steps))
        return positions, trace

    def run(key, num_chains):
        jax.block_until_ready(sample(key, params, x, y, num_chains))

    return run


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def timed_cpu(fn, *args, **kwargs) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads): CPU time suffers less from other load."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu


def summary(times: list[float]) -> dict:
    return {"min_s": min(times), "median_s": statistics.median(times), "all_s": times}


def loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "bayesjax"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" (bayesjax/ modified)" if dirty else "") if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def run_child(args: list[str], python: str = sys.executable, timeout: float = 600, script: str = __file__,
              env: dict | None = None) -> tuple[dict | None, float, str]:
    """Runs ``script`` (default: this one) as a child; returns (its JSON, wall seconds from spawn to exit, stderr tail)."""
    cmd = [python, os.path.abspath(script), *args]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start, "timed out"
    wall = time.perf_counter() - start
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(CHILD_TAG):
            result = json.loads(line[len(CHILD_TAG):])
    if proc.returncode != 0 or result is None:
        return None, wall, (proc.stderr or proc.stdout)[-2000:]
    return result, wall, ""


# --------------------------------------------------------------------------- #
# Child processes
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
    t_first = timed(run, key, num_chains)
    t_second = timed(run, key, num_chains)
    return {"import_s": t_import, "setup_s": t_setup, "first_call_s": t_first, "second_call_s": t_second}


def child_posteriors(data_path: str, num_steps: int, repeats: int, chains: list[int], vmap_steps: int) -> dict:
    """posteriors' SGLD (``posteriors.sgmcmc.sgld``) on the same MLP, data and start.

    Log-posterior (N * mean log-lik + log-prior) with lr = 1e-4, T = 1, beta = 0,
    so the update is the same equation. Minibatches from per-epoch
    ``torch.randperm``; ``inplace=True`` as posteriors' examples do. Many
    chains: ``torch.func.vmap(..., randomness="different")`` over the update.
    """
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)  # tensordict's notices on import
    import numpy as np
    import posteriors
    import torch
    from torch.func import functional_call

    arrays = np.load(data_path)
    x = torch.from_numpy(arrays["x"].reshape(len(arrays["x"]), -1))
    y = torch.from_numpy(arrays["y"]).long()
    num_data = len(y)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], HIDDEN[0]), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN[0], HIDDEN[1]), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN[1], NUM_CLASSES),
    )
    start = {}
    for i, layer in enumerate((0, 2, 4)):
        start[f"{layer}.weight"] = torch.from_numpy(arrays[f"kernel_{i}"].T.copy())
        start[f"{layer}.bias"] = torch.from_numpy(arrays[f"bias_{i}"].copy())

    def log_posterior(params, batch):
        xb, yb = batch
        logits = functional_call(net, params, (xb,))
        log_lik = -torch.nn.functional.cross_entropy(logits, yb, reduction="mean") * num_data
        log_prior = sum(torch.sum(-0.5 * (p / PRIOR_SCALE) ** 2) for p in params.values())
        return log_lik + log_prior, logits

    transform = posteriors.sgmcmc.sgld.build(log_posterior, lr=STEP_SIZE, temperature=1.0)
    steps_per_epoch = num_data // BATCH_SIZE
    out = {"torch": torch.__version__, "posteriors": getattr(posteriors, "__version__", "unknown"),
           "torch_threads": torch.get_num_threads(), "steps": num_steps, "vmap_steps": vmap_steps, "chains": {}}

    def one_chain():
        state = transform.init({k: v.clone() for k, v in start.items()})
        perm = None
        for t in range(num_steps):
            if t % steps_per_epoch == 0:
                perm = torch.randperm(num_data)
            index = perm[(t % steps_per_epoch) * BATCH_SIZE:(t % steps_per_epoch + 1) * BATCH_SIZE]
            state, _ = transform.update(state, (x[index], y[index]), inplace=True)
        return state

    def many_chains(num_chains, num_steps=vmap_steps):
        def update(params, xb, yb):
            state = posteriors.sgmcmc.sgld.init(params)
            new_state, _ = posteriors.sgmcmc.sgld.update(state, (xb, yb), log_posterior, lr=STEP_SIZE)
            return new_state.params

        vupdate = torch.func.vmap(update, randomness="different")
        params = {k: v.unsqueeze(0).repeat(num_chains, *([1] * v.ndim)) for k, v in start.items()}
        perms = None
        for t in range(num_steps):
            if t % steps_per_epoch == 0:
                perms = torch.stack([torch.randperm(num_data) for _ in range(num_chains)])
            pos = t % steps_per_epoch
            index = perms[:, pos * BATCH_SIZE:(pos + 1) * BATCH_SIZE]
            params = vupdate(params, x[index], y[index])
        return params

    torch.manual_seed(0)
    # Torch's default is one intra-op thread per core; on a loaded machine its OpenMP threads can
    # collapse (measured here: 7-28 steps/s with 2 threads vs 130 with 1), so both are timed and
    # the better one is compared.
    thread_counts = sorted({torch.get_num_threads(), 1}, reverse=True)
    for num_chains in chains:
        fn = one_chain if num_chains == 1 else (lambda c=num_chains: many_chains(c))
        steps = num_steps if num_chains == 1 else vmap_steps
        row = {"threads": {}, "steps": steps}
        for threads in thread_counts:
            torch.set_num_threads(threads)
            try:
                fn()  # warm-up (first-call allocations, vmap tracing caches)
                times = [timed(fn) for _ in range(repeats)]
                row["threads"][str(threads)] = {**summary(times),
                                                "chain_steps_per_s": num_chains * steps / min(times)}
            except Exception as error:  # noqa: BLE001  (report, don't crash the benchmark)
                row["threads"][str(threads)] = {"error": f"{type(error).__name__}: {error}"[:300]}
        timed_ok = {t: r for t, r in row["threads"].items() if "min_s" in r}
        if timed_ok:
            best = max(timed_ok, key=lambda t: timed_ok[t]["chain_steps_per_s"])
            row.update(timed_ok[best], best_threads=int(best))
        else:
            row["error"] = next(iter(row["threads"].values()))["error"]
        out["chains"][str(num_chains)] = row
    return out


# --------------------------------------------------------------------------- #
# Sections of the main process
# --------------------------------------------------------------------------- #
def section_throughput(args, chains, results):
    import jax

    ds, params, algo = setup()
    results["model"] = {"num_params": sum(int(w.size) for w in jax.tree.leaves(params)),
                        "num_data": int(len(ds.y_train)), "batch_size": BATCH_SIZE, "step_size": STEP_SIZE}
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
            first[name] = timed(fn, key, c)
        for r in range(args.repeats):  # interleaved: background load hits every implementation alike
            for name, fn in impls.items():
                wall, cpu_s = timed_cpu(fn, jax.random.fold_in(key, r + 1), c)
                times[name].append(wall)
                cpu[name].append(cpu_s)
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

        loop_times = [timed(loop) for _ in range(args.loop_repeats)]
        vmap_time = vmapped[name]["min_s"] if vmapped else min(timed(run, key, n) for _ in range(args.repeats))
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
    out = {"steps": args.steps, "chains": args.process_chains}
    with tempfile.TemporaryDirectory(prefix="bayesjax-bench-cache-") as cache_root:
        for impl in ("bayesjax", "hand"):
            cache_dir = os.path.join(cache_root, impl)
            for phase in ("cold", "warm"):  # cold populates the empty cache, warm reads it
                child_args = ["--_child", impl, "--_cache", cache_dir, "--steps", str(args.steps),
                              "--chains", str(args.process_chains)]
                data, wall, err = run_child(child_args)
                if data is None:
                    out[f"{impl}_{phase}"] = {"error": err}
                    print(f"  {impl} {phase}: FAILED\n{err}", flush=True)
                    continue
                data["process_wall_s"] = wall
                data["short_run_process_s"] = wall - data["second_call_s"]
                data["compile_s"] = data["first_call_s"] - data["second_call_s"]
                out[f"{impl}_{phase}"] = data
                print(f"  {impl:8s} {phase}: compile {data['compile_s']:.2f}s, "
                      f"process {data['short_run_process_s']:.2f}s (load {loadavg()})", flush=True)
            try:
                out[f"{impl}_cache_entries"] = sorted(os.listdir(cache_dir))
            except OSError:
                out[f"{impl}_cache_entries"] = []
    results["fresh_process"] = out


def find_torch_python(args) -> str | None:
    """This interpreter if it has torch + posteriors, else ``--torch-python`` / $BENCH_TORCH_PYTHON."""
    try:
        import posteriors  # noqa: F401
        import torch  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    candidate = args.torch_python or os.environ.get("BENCH_TORCH_PYTHON")
    if not candidate:
        return None
    probe = subprocess.run([candidate, "-c", "import torch, posteriors"], capture_output=True, text=True)
    return candidate if probe.returncode == 0 else None


def section_posteriors(args, results):
    import numpy as np

    python = find_torch_python(args)
    if python is None:
        results["posteriors"] = {"skipped": "torch/posteriors not importable"}
        return
    ds, params, _ = setup()
    chains = [1] + ([] if args.no_posteriors_vmap else [args.loop_chains])
    with tempfile.TemporaryDirectory(prefix="bayesjax-bench-") as tmp:
        path = os.path.join(tmp, "data.npz")
        layers = {}
        for i in range(len(HIDDEN) + 1):
            layers[f"kernel_{i}"] = np.asarray(params[f"Dense_{i}"]["kernel"])
            layers[f"bias_{i}"] = np.asarray(params[f"Dense_{i}"]["bias"])
        np.savez(path, x=ds.x_train, y=ds.y_train, **layers)
        data, wall, err = run_child(["--_child", "posteriors", "--_data", path,
                                     "--steps", str(args.posteriors_steps),
                                     "--_vmap_steps", str(args.posteriors_vmap_steps),
                                     "--repeats", str(args.repeats),
                                     "--chains", ",".join(map(str, chains))], python=python)
    if data is None:
        results["posteriors"] = {"error": err, "python": python}
        print(f"  posteriors FAILED:\n{err}", flush=True)
        return
    data["python"] = python
    results["posteriors"] = data


def section_host_split(args, chains, results):
    """The most chains once more, on one device and sharded over the host split into one device per core.

    One XLA:CPU device runs a program on one core at these sizes; the
    ``bayesjax`` command splits the host into one device per core and shards
    the chains over them (``bj.sharding.mesh``). Both runs keep one sample
    (``num_samples=1``), as posteriors' loop keeps only the current state.
    """
    import scaling  # the chains-over-devices benchmark's children

    from bayesjax.sharding import usable_cores

    cores = usable_cores()
    if cores < 2:
        results["host_split"] = {"skipped": f"{cores} usable core"}
        return
    results["host_split"] = scaling.measure([1, cores], [max(chains)], args.steps, args.repeats)


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #
def print_report(args, chains, results):
    info = results["machine"]
    print()
    print("=" * 96)
    print("SGLD benchmark: MLP 64-50-50-10 on digits, batch 128, step size 1e-4, Gaussian prior, categorical")
    print("=" * 96)
    for k in ("platform", "python", "cpu", "cpu_count", "jax", "jaxlib", "device", "bayesjax", "git",
              "load_start", "load_end"):
        print(f"  {k:11s} {info.get(k)}")
    print(f"  {'settings':11s} steps={args.steps} repeats={args.repeats} (steady = min of repeats after "
          f"the first call)")

    tp = results.get("throughput", {})
    if tp:
        print()
        print("Steady-state throughput (chain-steps/s; time = best of repeats, compile = first call - best)")
        head = f"  {'chains':>6} | {'bj.run':>9} {'time s':>7} {'compile':>7} | {'hand':>9} {'time s':>7} " \
               f"{'compile':>7} | {'bj/hand':>7} {'target':>7} {'cpu b/h':>7}"
        if args.buffer_variant:
            head += f" | {'bj ns=1':>9} {'bj1/hand':>8} | {'bj lean':>9} {'lean/hand':>9} | {'hand rec':>9} {'bj/rec':>6}"
        print(head)
        for c in chains:
            row = tp[str(c)]
            b, h = row["bayesjax"], row["hand"]
            ratio = row["ratio_bayesjax_over_hand"]
            line = (f"  {c:>6} | {b['chain_steps_per_s']:>9.0f} {b['min_s']:>7.3f} {b['compile_s']:>7.2f} | "
                    f"{h['chain_steps_per_s']:>9.0f} {h['min_s']:>7.3f} {h['compile_s']:>7.2f} | "
                    f"{ratio:>7.2f} {verdict(ratio <= TARGET_HAND_RATIO):>7} {row['cpu_ratio_bayesjax_over_hand']:>7.2f}")
            if args.buffer_variant:
                b1 = row["bayesjax_num_samples_1"]
                lean = row["bayesjax_lean"]
                rec = row["hand_recording"]
                line += (f" | {b1['chain_steps_per_s']:>9.0f} {b1['min_s'] / h['min_s']:>8.2f}"
                         f" | {lean['chain_steps_per_s']:>9.0f} {lean['min_s'] / h['min_s']:>9.2f}"
                         f" | {rec['chain_steps_per_s']:>9.0f} {b['min_s'] / rec['min_s']:>6.2f}")
            print(line)
        print(f"  target: bayesjax time / hand-written time <= {TARGET_HAND_RATIO} (wall time); 'cpu b/h': the same "
              "ratio of process CPU time,\n  less sensitive to other processes on a shared machine")
        num_params = results["model"]["num_params"]
        sizes = ", ".join(f"{c} chains {c * args.steps * num_params * 4 / 2**20:,.0f} MiB" for c in chains)
        print(f"  bj.run keeps every position by default (num_samples=None): a buffer of chains x {args.steps} "
              f"steps x {num_params:,} params x 4 B\n  ({sizes}; above 1 GiB it keeps the last positions that fit "
              "and warns); the hand-written loop keeps the final position")
        if args.buffer_variant:
            print("  'bj ns=1': bj.run(num_samples=1), a one-slot buffer: the driver without the buffer's memory;\n"
                  "  'bj lean': bj.run(num_samples=1, info_every=0): no per-step log density kept either, the "
                  "outputs of the hand-written loop;\n  'hand rec': the hand-written loop keeping every position and "
                  "the log density (bj.run's default outputs; no 1 GiB cap), 'bj/rec' the default bj.run against it")

    loop = results.get("loop")
    if loop and "bayesjax" in loop:
        n = loop["num_chains"]
        gain = loop["bayesjax"]["gain"]
        print()
        print(f"{n} vmapped chains vs a Python loop of {n} jitted single-chain runs")
        print(f"  bj.run   loop {loop['bayesjax']['loop']['min_s']:7.2f}s   vmapped {loop['bayesjax']['vmapped_min_s']:7.2f}s"
              f"   gain {gain:5.2f}x   target >= {TARGET_VMAP_GAIN}x: {verdict(gain >= TARGET_VMAP_GAIN)}")
        if "hand" in loop:
            print(f"  hand     loop {loop['hand']['loop']['min_s']:7.2f}s   vmapped {loop['hand']['vmapped_min_s']:7.2f}s"
                  f"   gain {loop['hand']['gain']:5.2f}x")
        elif "hand_estimate_from_1_chain" in loop:
            print(f"  hand     gain {loop['hand_estimate_from_1_chain']:5.2f}x (estimate: {n} x its 1-chain "
                  "time / its vmapped time; --hand-loop measures it)")

    fp = results.get("fresh_process")
    if fp:
        print()
        print(f"Fresh processes, persistent compilation cache in a temporary folder "
              f"({fp['chains']} chain(s) x {fp['steps']} steps)")
        print(f"  {'':18s} {'import':>7} {'setup':>7} {'compile':>8} {'run':>7} {'process':>8}")
        for impl in ("bayesjax", "hand"):
            for phase in ("cold", "warm"):
                d = fp.get(f"{impl}_{phase}", {})
                if "error" in d or not d:
                    print(f"  {impl + ' ' + phase:18s} failed")
                    continue
                print(f"  {impl + ' ' + phase:18s} {d['import_s']:>7.2f} {d['setup_s']:>7.2f} {d['compile_s']:>8.2f} "
                      f"{d['second_call_s']:>7.2f} {d['short_run_process_s']:>8.2f}")
        print("  cold = empty cache (this process populates it), warm = the next process; compile = first call "
              "- second call;\n  process = interpreter start to exit of a short run (wall time of the child "
              "minus its second call)")
        run_entries = [e for e in fp.get("bayesjax_cache_entries", []) if e.startswith("jit_advance_chains-")]
        print(f"  bj.run's step loop (advance_chains) in the cache after the cold process: "
              f"{'yes' if run_entries else 'NO'} "
              f"({len(fp.get('bayesjax_cache_entries', []))} entries in all)")

    post = results.get("posteriors", {})
    posteriors_one_chain = post.get("chains", {}).get("1", {}).get("chain_steps_per_s")
    print()
    if "skipped" in post or "error" in post:
        print(f"posteriors: skipped ({post.get('skipped') or 'child failed: ' + post.get('error', '')[-300:]}).")
        print("  To include it: python3 -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install "
              "torch==2.13.0 posteriors\n  then add --torch-python /tmp/benchvenv/bin/python "
              "(or set BENCH_TORCH_PYTHON)")
    elif post:
        print(f"posteriors {post['posteriors']} (torch {post['torch']}, default {post['torch_threads']} threads; "
              f"steps per timing: {post['steps']} for 1 chain, {post['vmap_steps']} vmapped; best of {args.repeats})")
        for c, row in post["chains"].items():
            if "error" in row:
                print(f"  chains={c:<3}: failed: {row['error']}")
                continue
            ours = tp.get(c, {}).get("bayesjax")
            ratio = (f"bj.run / posteriors = {ours['chain_steps_per_s'] / row['chain_steps_per_s']:.2f}x" if ours
                     else "")
            how = "torch.func.vmap over the update" if c != "1" else "one chain, Python loop"
            per_threads = ", ".join(f"{t} thread(s) {r['chain_steps_per_s']:.0f}" if "min_s" in r else f"{t}: failed"
                                    for t, r in row["threads"].items())
            print(f"  chains={c:<3} {row['chain_steps_per_s']:>9.0f} chain-steps/s ({how}; {per_threads})   {ratio}")
        single = post["chains"].get("1", {})
        most = max(tp, key=int) if tp else None
        if "chain_steps_per_s" in single and most:
            gain = tp[most]["bayesjax"]["chain_steps_per_s"] / single["chain_steps_per_s"]
            print(f"  bj.run with {most} vmapped chains / posteriors' one chain (as posteriors is usually run): "
                  f"{gain:.1f}x chain-steps/s (target 10x: {verdict(gain >= 10)})")
    print_host_split(results.get("host_split"), posteriors_one_chain)


def print_host_split(split: dict | None, posteriors_one_chain: float | None) -> None:
    if not split:
        return
    print()
    if "skipped" in split:
        print(f"Host split: skipped ({split['skipped']})")
        return
    runs = split["by_devices"]
    if "1" not in runs or len(runs) < 2:
        print(f"Host split: a child failed (device counts measured: {sorted(runs)})")
        return
    cores = max(runs, key=int)
    ((num_chains, one),) = runs["1"]["rows"].items()
    one_rate = one["bayesjax"]["chain_steps_per_s"]
    rate = runs[cores]["rows"][num_chains]["bayesjax"]["chain_steps_per_s"]
    print(f"Host split into one device per core, bj.run(num_samples=1), {num_chains} chains (benchmarks/scaling.py)")
    print(f"  one device {one_rate:,.0f} chain-steps/s; sharded over {cores} devices (as the bayesjax command "
          f"runs) {rate:,.0f}, {rate / one_rate:.2f}x")
    if posteriors_one_chain:
        gain = rate / posteriors_one_chain
        print(f"  sharded bj.run / posteriors' one chain: {gain:.1f}x chain-steps/s (target 10x: {verdict(gain >= 10)})")


def machine_info() -> dict:
    import jax

    import bayesjax

    try:
        import jaxlib

        jaxlib_version = jaxlib.__version__
    except (ImportError, AttributeError):
        jaxlib_version = "unknown"
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cpu_count": f"{os.cpu_count()} ({bayesjax.sharding.usable_cores()} usable)",
        "jax": jax.__version__,
        "jaxlib": jaxlib_version,
        "device": ", ".join(f"{d.platform}:{d.device_kind}" for d in jax.devices()),
        "bayesjax": getattr(bayesjax, "__version__", "unknown"),
        "git": git_revision(),
        "load_start": loadavg(),
    }


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
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    parser.add_argument("--_cache", help=argparse.SUPPRESS)
    parser.add_argument("--_data", help=argparse.SUPPRESS)
    parser.add_argument("--_vmap_steps", type=int, default=50, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    chains = [int(c) for c in args.chains.split(",") if c.strip()]
    if args._child == "posteriors":
        out = child_posteriors(args._data, args.steps, args.repeats, chains, args._vmap_steps)
        print(CHILD_TAG + json.dumps(out), flush=True)
        return 0
    if args._child in ("bayesjax", "hand"):
        out = child_fresh(args._child, args._cache, args.steps, chains[0])
        print(CHILD_TAG + json.dumps(out), flush=True)
        return 0

    wall_start = time.perf_counter()
    results = {"machine": machine_info(), "settings": vars(args) | {"chains": chains}}
    print(f"[1/5] steady-state throughput, chains {chains}", flush=True)
    bj_run, hand_run = section_throughput(args, chains, results)
    if not args.skip_loop:
        print(f"[2/5] {args.loop_chains} vmapped chains vs a Python loop", flush=True)
        section_loop(args, bj_run, hand_run, results)
    if not args.skip_process:
        print("[3/5] fresh processes (persistent compilation cache)", flush=True)
        section_fresh_processes(args, results)
    print("[4/5] posteriors (PyTorch)", flush=True)
    section_posteriors(args, results)
    if not args.skip_host_split:
        print(f"[5/5] {max(chains)} chains sharded over the host's cores", flush=True)
        section_host_split(args, chains, results)
    results["machine"]["load_end"] = loadavg()
    results["benchmark_wall_s"] = time.perf_counter() - wall_start
    print_report(args, chains, results)
    print(f"\nbenchmark wall time {results['benchmark_wall_s']:.0f}s")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
