#!/usr/bin/env python
"""Full-batch HMC and NUTS, the reference posterior of ``bayesjax compare``: ``bj.run`` against raw blackjax and numpyro.

Workloads (``--workloads``), each started from a MAP estimate (Adam, batch
128) so that a few hundred transitions stay near the posterior's bulk:

* ``digits``: the MLP 64-50-50-10 (ReLU, 6,310 weights) of the other
  benchmarks, 1,437 training images, categorical likelihood;
* ``diabetes``: a 1-hidden-layer tanh net 10-50-1 (601 weights) on the
  bundled diabetes regression set (353 examples, targets standardized),
  Gaussian likelihood with noise std 0.75.

Both under a N(0, 1) prior at T = 1. Every sampler runs one chain with the same
fixed settings: no adaptation, identity inverse mass matrix, the step size of
``WORKLOADS``, 10 leapfrog steps for HMC (``bj.hmc(step_size_jitter=0.0)``, as
blackjax's and numpyro's HMC do not jitter) and at most ``2^5 - 1``
leapfrog steps for NUTS (``max_num_doublings`` = numpyro's ``max_tree_depth``).

What is measured, in one run so that ratios share one machine state:

(a) ``bj.hmc`` / ``bj.nuts`` through ``bj.run`` (full batch, default sample
    buffer and per-step info) against raw ``blackjax.hmc`` / ``blackjax.nuts``
    in a hand-written ``jax.lax.scan`` that keeps every position, the
    acceptance rate and the leapfrog count (the same work). Target: bj within
    1.1x. The raw scan and numpyro evaluate a hand-written ``jnp`` log
    density, checked equal to ``bj.log_joint``'s value at the MAP.
(b) numpyro's ``HMC`` / ``NUTS`` (``potential_fn`` = minus that log density,
    ``adapt_step_size=False``, ``adapt_mass_matrix=False``, ``num_warmup=0``,
    ``trajectory_length=None``: otherwise numpyro rescales the step size to
    ``2 pi / L``), one ``MCMC`` object called repeatedly as a user would.
    Target: bayesjax at least 2x faster. Skipped, with a message, without
    numpyro or with ``--no-numpyro``.
(c) The posterior predictive on the test set of each: classification, the
    mean predictive probability of the label and the mean top-class
    probability; regression, the predictive mean and variance (noise^2 plus
    the epistemic variance), averaged over test inputs. Each is a posterior
    mean of a per-draw quantity, estimated from the second half of every
    chain; its Monte Carlo standard error comes from
    :func:`bayesjax.diagnostics.mcse_mean` over the chains of the timed calls
    (independent chains from the same start). bj passes if each differs from
    raw blackjax and numpyro by at most z standard errors of the difference,
    z Bonferroni-corrected for a family-wise false-failure rate of 1%;
    the script exits with status 1 on a failure.
(d) The digits MLP with the data split over two XLA host devices (a child
    process whose ``XLA_FLAGS`` get ``--xla_force_host_platform_device_count=2``;
    the training set cut to 1,436 examples, since ``bj.run`` shards data only
    when the devices divide it): ``bj.run(mesh=bj.sharding.mesh(chains=1,
    data=2))`` against ``bj.run`` on one device, and the raw scan with its data
    placed by ``bj.sharding.data_sharding`` against the raw scan on one device.

Steady state = the best of ``--repeats`` calls after the first; compile = the
first call's excess over it. Calls of the implementations are interleaved.
NUTS trajectories differ in length between implementations (their random
streams differ), so ratios are taken per leapfrog step (for HMC the same as per
call). CPU-time ratios are printed beside the wall-time ones.

Usage::

    taskset -c 0,1 .venv/bin/python benchmarks/hmc.py              # everything (< 10 min on 2 cores)
    .venv/bin/python benchmarks/hmc.py --quick                     # a smoke run (about a minute)
    .venv/bin/python benchmarks/hmc.py --workloads diabetes --algorithms nuts --no-numpyro --no-sharded
    .venv/bin/python benchmarks/hmc.py --json results/hmc.json

numpyro is optional (``pip install numpyro multipledispatch`` beside the
installed jax). The figures measured so far are in benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys

from _common import emit, loadavg, machine_facts, run_child, timed

WORKLOADS = {
    "digits": {"dataset": "digits", "hidden": [50, 50], "activation": "relu", "classes": 10, "noise_std": None,
               "step_size": 3e-3, "hmc_samples": 200, "nuts_samples": 100},
    "diabetes": {"dataset": "diabetes", "hidden": [50], "activation": "tanh", "classes": None, "noise_std": 0.75,
                 "step_size": 1e-2, "hmc_samples": 300, "nuts_samples": 150},
}
NUM_LEAPFROG = 10
MAX_DOUBLINGS = 5
PRIOR_SCALE = 1.0
MAP_STEPS = 2000
TARGET_RAW_RATIO = 1.1      # bj.run time / raw blackjax scan time <= 1.1
TARGET_NUMPYRO_SPEEDUP = 2.0  # numpyro time / bj.run time >= 2
FAMILY_ALPHA = 0.01          # chance that the moment check fails although every sampler is right


# --------------------------------------------------------------------------- #
# The problem and its three samplers
# --------------------------------------------------------------------------- #
def setup(name: str, map_steps: int, even: bool = False) -> dict:
    """Data, model, log-joint, the MAP start and a hand-written ``jnp`` log density of the same target."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import bayesjax as bj

    spec = WORKLOADS[name]
    ds = bj.data.load(spec["dataset"])
    n = len(ds.y_train) // 2 * 2 if even else len(ds.y_train)
    x, y = jnp.asarray(ds.x_train[:n]), jnp.asarray(ds.y_train[:n])
    activation = {"relu": jax.nn.relu, "tanh": jnp.tanh}[spec["activation"]]
    model = bj.models.mlp(spec["hidden"], num_outputs=spec["classes"] or 1, activation=activation)
    lik = bj.likelihoods.categorical() if spec["classes"] else bj.likelihoods.gaussian(spec["noise_std"])
    lj = bj.log_joint(model.apply, bj.priors.gaussian(scale=PRIOR_SCALE), lik, num_data=n)
    fit = bj.run(jax.random.key(1), bj.map(lj, optax.adam(1e-3)), model.init(jax.random.key(0), x[:1]), (x, y),
                 num_steps=map_steps, batch_size=128, progress=False)
    params = jax.tree.map(lambda a: a[0], fit.sample(jax.random.key(2), 1))
    logdensity = hand_logdensity(spec, activation)
    ours, theirs = float(lj(params, (x, y))), float(jax.jit(logdensity)(params, x, y))
    if not np.isclose(ours, theirs, rtol=1e-5):
        raise AssertionError(f"the hand-written log density {theirs} differs from bj.log_joint's {ours}")
    return {"name": name, "spec": spec, "model": model, "lj": lj, "params": params, "x": x, "y": y,
            "x_test": jnp.asarray(ds.x_test), "y_test": jnp.asarray(ds.y_test), "logdensity": logdensity}


def hand_logdensity(spec: dict, activation):
    """``(params, x, y) -> log p(y | x, params) + log p(params)`` in plain ``jnp`` (the MLP of ``bj.models.mlp``)."""
    import jax
    import jax.numpy as jnp

    classes, noise = spec["classes"], spec["noise_std"]

    def logdensity(p, x, y):
        layers = [p[f"Dense_{i}"] for i in range(len(p))]
        h = x.reshape(x.shape[0], -1)
        for layer in layers[:-1]:
            h = activation(h @ layer["kernel"] + layer["bias"])
        out = h @ layers[-1]["kernel"] + layers[-1]["bias"]
        leaves = jax.tree.leaves(p)
        log_prior = (sum(-0.5 * jnp.sum(w**2) for w in leaves) / PRIOR_SCALE**2
                     - 0.5 * sum(w.size for w in leaves) * math.log(2 * math.pi * PRIOR_SCALE**2))
        if classes:
            is_label = y[:, None] == jnp.arange(classes)
            return jnp.sum(jnp.where(is_label, jax.nn.log_softmax(out), 0.0)) + log_prior
        log_lik = -0.5 * jnp.sum(((y - out[:, 0]) / noise) ** 2) - y.shape[0] * math.log(noise * math.sqrt(2 * math.pi))
        return log_lik + log_prior

    return logdensity


def bayesjax_runner(problem: dict, algorithm: str, num_samples: int, mesh=None):
    """``key -> (positions [S, ...], leapfrog steps [S], acceptance [S])`` from one blocking ``bj.run``."""
    import jax

    import bayesjax as bj

    eps = problem["spec"]["step_size"]
    algo = (bj.hmc(problem["lj"], step_size=eps, num_integration_steps=NUM_LEAPFROG, step_size_jitter=0.0)
            if algorithm == "hmc" else bj.nuts(problem["lj"], step_size=eps, max_num_doublings=MAX_DOUBLINGS))

    def run(key):
        post = bj.run(key, algo, problem["params"], (problem["x"], problem["y"]), num_steps=num_samples,
                      progress=False, mesh=mesh)
        jax.block_until_ready((post.state, post.info))
        return post

    def read(post):
        positions = jax.tree.map(lambda a: a[0], bj.diagnostics.chain_samples(post))
        return positions, post.info.num_integration_steps[:, 0], post.info.acceptance_rate[:, 0]

    return run, read


def blackjax_runner(problem: dict, algorithm: str, num_samples: int, data_sharding=None):
    """The same chain as raw blackjax in a hand-written ``lax.scan`` (every position kept); data optionally placed."""
    import blackjax
    import jax
    import jax.numpy as jnp

    eps, logdensity = problem["spec"]["step_size"], problem["logdensity"]
    dim = sum(w.size for w in jax.tree.leaves(problem["params"]))

    @jax.jit
    def chain(key, position, x, y):
        target = lambda p: logdensity(p, x, y)  # noqa: E731
        kernel = (blackjax.hmc(target, eps, jnp.ones(dim), NUM_LEAPFROG) if algorithm == "hmc"
                  else blackjax.nuts(target, eps, jnp.ones(dim), max_num_doublings=MAX_DOUBLINGS))

        def body(state, step_key):
            state, info = kernel.step(step_key, state)
            return state, (state.position, info.num_integration_steps, info.acceptance_rate)

        return jax.lax.scan(body, kernel.init(position), jax.random.split(key, num_samples))[1]

    x, y = problem["x"], problem["y"]
    if data_sharding is not None:
        x, y = jax.device_put(x, data_sharding), jax.device_put(y, data_sharding)
    return (lambda key: jax.block_until_ready(chain(key, problem["params"], x, y))), (lambda trace: trace)


def numpyro_runner(problem: dict, algorithm: str, num_samples: int):
    """numpyro's HMC / NUTS on the same potential, settings fixed; one ``MCMC`` object reused across calls."""
    import jax
    from numpyro.infer import HMC, MCMC, NUTS

    x, y, logdensity = problem["x"], problem["y"], problem["logdensity"]
    settings = {"potential_fn": lambda p: -logdensity(p, x, y), "step_size": problem["spec"]["step_size"],
                "adapt_step_size": False, "adapt_mass_matrix": False, "dense_mass": False}
    kernel = (HMC(num_steps=NUM_LEAPFROG, trajectory_length=None, **settings) if algorithm == "hmc"
              else NUTS(max_tree_depth=MAX_DOUBLINGS, **settings))
    mcmc = MCMC(kernel, num_warmup=0, num_samples=num_samples, progress_bar=False)

    def run(key):
        mcmc.run(key, init_params=problem["params"], extra_fields=("num_steps", "accept_prob"))
        return jax.block_until_ready((mcmc.get_samples(), mcmc.get_extra_fields()))

    return run, lambda out: (out[0], out[1]["num_steps"], out[1]["accept_prob"])


def numpyro_status(disabled: bool) -> str | None:
    """None if numpyro can run here, else why not."""
    if disabled:
        return "--no-numpyro"
    try:
        import numpyro
    except ImportError as error:
        return f"numpyro is not importable ({error}); pip install numpyro multipledispatch"
    return None if numpyro.__version__ else "numpyro without a version"


# --------------------------------------------------------------------------- #
# Timing and the predictive moments
# --------------------------------------------------------------------------- #
def features_fn(problem: dict):
    """Per-draw test-set quantities ``[S, E]``: (label probability, top probability) means, or the mean function."""
    import jax
    import jax.numpy as jnp

    apply, x_test, y_test = problem["model"].apply, problem["x_test"], problem["y_test"]

    def one(p):
        outputs = apply(p, x_test)
        if not problem["spec"]["classes"]:
            return outputs[:, 0]
        probs = jax.nn.softmax(outputs)
        return jnp.stack([jnp.take_along_axis(probs, y_test[:, None], 1).mean(), probs.max(-1).mean()])

    return jax.jit(jax.vmap(one))


def measure(runners: dict, repeats: int, samples: int, features=None) -> dict:
    """Interleaved calls (the first compiles); per runner its times, leapfrog counts and draws' features."""
    import jax
    import numpy as np

    out = {name: {"wall": [], "cpu": [], "leapfrog": [], "accept": [], "features": []} for name in runners}
    for rep in range(repeats + 1):
        for name, (run, read) in runners.items():
            timing = timed(run, jax.random.key(rep))
            positions, leapfrog, accept = read(timing.result)
            row = out[name]
            row["wall"].append(timing.wall_s)
            row["cpu"].append(timing.cpu_s)
            row["leapfrog"].append(int(np.sum(leapfrog)))
            row["accept"].append(float(np.mean(accept)))
            if features is not None:  # the second half of the chain
                half = jax.tree.map(lambda a: a[a.shape[0] // 2:], positions)
                row["features"].append(np.asarray(features(half)))
    for name, row in out.items():
        steady = range(1, repeats + 1)
        best = min(steady, key=lambda r: row["wall"][r] / row["leapfrog"][r])
        row.update(best_s=row["wall"][best], compile_s=row["wall"][0] - min(row["wall"][1:]),
                   per_leapfrog_ms=1e3 * row["wall"][best] / row["leapfrog"][best],
                   cpu_per_leapfrog_ms=1e3 * min(c / n for c, n in zip(row["cpu"][1:], row["leapfrog"][1:])),
                   leapfrog_per_sample=statistics.mean(row["leapfrog"]) / samples,
                   acceptance=statistics.mean(row["accept"]))
    return out


def moments(problem: dict, features) -> dict:
    """Posterior means of the predictive quantities and their MCSE, from features ``[C, K, E]``."""
    import jax.numpy as jnp
    import numpy as np

    import bayesjax as bj

    f = np.stack(features)
    if problem["spec"]["classes"]:
        draws, offset = {"mean p(label)": f[..., 0], "mean top-class p": f[..., 1]}, {}
    else:
        draws = {"predictive mean": f.mean(-1), "predictive variance": ((f - f.mean((0, 1))) ** 2).mean(-1)}
        offset = {"predictive variance": problem["spec"]["noise_std"] ** 2}
    return {name: {"estimate": float(d.mean()) + offset.get(name, 0.0),
                   "mcse": float(bj.diagnostics.mcse_mean(jnp.asarray(d)))} for name, d in draws.items()}


def compare_moments(table: dict, z: float) -> list[dict]:
    """bj against every other implementation: ``|difference| / sqrt(mcse_bj^2 + mcse_other^2) <= z``."""
    checks = []
    for other in (name for name in table if name != "bayesjax"):
        for quantity, ours in table["bayesjax"].items():
            theirs = table[other][quantity]
            se = math.hypot(ours["mcse"], theirs["mcse"])
            score = abs(ours["estimate"] - theirs["estimate"]) / se if se > 0 else math.inf
            checks.append({"against": other, "quantity": quantity, "z": score, "pass": score <= z})
    return checks


# --------------------------------------------------------------------------- #
# Parts
# --------------------------------------------------------------------------- #
def compare_part(args, name: str, algorithm: str, with_numpyro: bool, z: float) -> dict:
    """(a), (b) and (c) for one workload and sampler."""
    problem = setup(name, args.map_steps)
    samples = args.samples or problem["spec"][f"{algorithm}_samples"]
    runners = {"bayesjax": bayesjax_runner(problem, algorithm, samples),
               "blackjax": blackjax_runner(problem, algorithm, samples)}
    if with_numpyro:
        runners["numpyro"] = numpyro_runner(problem, algorithm, samples)
    timings = measure(runners, args.repeats, samples, features_fn(problem))
    table = {impl: moments(problem, row.pop("features")) for impl, row in timings.items()}
    bj_ms = timings["bayesjax"]["per_leapfrog_ms"]
    result = {"samples": samples, "timings": timings, "moments": table, "checks": compare_moments(table, z),
              "ratio_raw": bj_ms / timings["blackjax"]["per_leapfrog_ms"],
              "cpu_ratio_raw": timings["bayesjax"]["cpu_per_leapfrog_ms"] / timings["blackjax"]["cpu_per_leapfrog_ms"]}
    if with_numpyro:
        result["speedup_numpyro"] = timings["numpyro"]["per_leapfrog_ms"] / bj_ms
        result["cpu_speedup_numpyro"] = timings["numpyro"]["cpu_per_leapfrog_ms"] / timings["bayesjax"]["cpu_per_leapfrog_ms"]
    report_part(name, algorithm, problem, result)
    return result


def report_part(name: str, algorithm: str, problem: dict, r: dict) -> None:
    spec = problem["spec"]
    steps = f"L = {NUM_LEAPFROG}" if algorithm == "hmc" else f"max depth {MAX_DOUBLINGS}"
    print(f"\n{name} {algorithm.upper()} (eps {spec['step_size']:g}, {steps}), {r['samples']} samples, 1 chain, "
          f"load {loadavg()}:")
    print(f"  {'':10s} {'best s':>7s} {'samples/s':>9s} {'leapfrog/s':>10s} {'leapfrog/sample':>15s} "
          f"{'compile s':>9s} {'accept':>6s}")
    for impl, t in r["timings"].items():
        print(f"  {impl:10s} {t['best_s']:7.2f} {r['samples'] / t['best_s']:9.1f} {1e3 / t['per_leapfrog_ms']:10.0f} "
              f"{t['leapfrog_per_sample']:15.1f} {t['compile_s']:9.2f} {t['acceptance']:6.3f}")
    verdict = "meets" if r["ratio_raw"] <= TARGET_RAW_RATIO else "MISSES"
    line = (f"  bj / raw blackjax per leapfrog step: {r['ratio_raw']:.3f} ({verdict} <= {TARGET_RAW_RATIO}; "
            f"CPU time {r['cpu_ratio_raw']:.3f})")
    if "speedup_numpyro" in r:
        verdict = "meets" if r["speedup_numpyro"] >= TARGET_NUMPYRO_SPEEDUP else "MISSES"
        line += (f"; numpyro / bj: {r['speedup_numpyro']:.2f}x ({verdict} >= {TARGET_NUMPYRO_SPEEDUP}; "
                 f"CPU time {r['cpu_speedup_numpyro']:.2f}x)")
    print(line)
    for quantity in r["moments"]["bayesjax"]:
        cells = ", ".join(f"{impl} {m[quantity]['estimate']:.4f} ± {m[quantity]['mcse']:.4f}"
                          for impl, m in r["moments"].items())
        zs = ", ".join(f"z vs {c['against']} {c['z']:.2f}" for c in r["checks"] if c["quantity"] == quantity)
        print(f"  {quantity}: {cells}; {zs}")


def sharded_child(args) -> dict:
    """(d), in a process whose XLA_FLAGS split the host into 2 devices: data-sharded runs against 1 device."""
    import jax

    import bayesjax as bj

    if jax.device_count() < 2:
        return {"skipped": f"{jax.device_count()} device(s): XLA_FLAGS did not split the host"}
    problem = setup("digits", args.map_steps, even=True)
    mesh = bj.sharding.mesh(chains=1, data=2)
    out = {"devices": [str(d) for d in jax.devices()[:2]], "num_data": int(problem["y"].shape[0])}
    for algorithm in args.algorithms.split(","):
        samples = args.samples or problem["spec"][f"{algorithm}_samples"]
        runners = {"bayesjax 1 device": bayesjax_runner(problem, algorithm, samples),
                   "bayesjax data/2": bayesjax_runner(problem, algorithm, samples, mesh=mesh),
                   "blackjax 1 device": blackjax_runner(problem, algorithm, samples),
                   "blackjax data/2": blackjax_runner(problem, algorithm, samples, bj.sharding.data_sharding(mesh))}
        timings = measure(runners, args.repeats, samples)
        out[algorithm] = {"samples": samples,
                          "timings": {k: {f: v[f] for f in ("best_s", "compile_s", "per_leapfrog_ms",
                                                            "cpu_per_leapfrog_ms", "acceptance")}
                                      for k, v in timings.items()}}
    return out


def sharded_part(args) -> dict:
    """Runs :func:`sharded_child` in a child process with two XLA host devices and prints its figures."""
    env = dict(os.environ)
    flags = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=2".strip()
    child = run_child(__file__, ["--_sharded", "--algorithms", args.algorithms, "--repeats", str(args.repeats),
                                 "--map-steps", str(args.map_steps)] + (["--samples", str(args.samples)] if args.samples
                                                                         else []), env=env, timeout=1200)
    if child.result is None or "skipped" in child.result:
        reason = child.error if child.result is None else child.result["skipped"]
        print(f"\n(d) data over 2 devices: failed or skipped: {reason.strip()[-800:]}")
        return {"skipped": reason}
    r = child.result
    print(f"\n(d) digits, data over 2 host devices ({r['num_data']} examples), 1 chain, load {loadavg()}:")
    for algorithm in args.algorithms.split(","):
        t = r[algorithm]["timings"]
        print(f"  {algorithm.upper()}, {r[algorithm]['samples']} samples: " + ", ".join(
            f"{k} {1e3 / v['per_leapfrog_ms']:.0f} leapfrog/s (compile {v['compile_s']:.1f} s)" for k, v in t.items()))
        ms = {k: v["per_leapfrog_ms"] for k, v in t.items()}
        ratio = ms["bayesjax data/2"] / ms["blackjax data/2"]
        r[algorithm].update(ratio_raw=ratio, speedup_bj=ms["bayesjax 1 device"] / ms["bayesjax data/2"],
                            speedup_raw=ms["blackjax 1 device"] / ms["blackjax data/2"])
        print(f"    bj / raw, both sharded: {ratio:.3f} ({'meets' if ratio <= TARGET_RAW_RATIO else 'MISSES'} <= "
              f"{TARGET_RAW_RATIO}); sharding speedup: bj {r[algorithm]['speedup_bj']:.2f}x, "
              f"raw {r[algorithm]['speedup_raw']:.2f}x")
    return r


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="digits,diabetes", help="comma-separated: " + ",".join(WORKLOADS))
    parser.add_argument("--algorithms", default="hmc,nuts", help="comma-separated: hmc,nuts")
    parser.add_argument("--samples", type=int, help="transitions per chain (default: per workload and sampler)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the compiling one (default 3)")
    parser.add_argument("--map-steps", type=int, default=MAP_STEPS, help="Adam steps of the MAP start")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 40 samples, 1 repeat, 300 MAP steps")
    parser.add_argument("--no-numpyro", action="store_true", help="skip the numpyro comparison (b)")
    parser.add_argument("--no-sharded", action="store_true", help="skip the data-sharded variant (d)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--_sharded", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.repeats, args.map_steps = args.samples or 40, 1, 300
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._sharded:
        emit(sharded_child(args))
        return 0
    machine = machine_facts()
    print("machine: " + ", ".join(f"{k} {machine[k]}" for k in ("cpu", "cpu_count", "jax", "device", "git", "load_start")))
    unavailable = numpyro_status(args.no_numpyro)
    if unavailable:
        print(f"(b) numpyro comparison skipped: {unavailable}")
    workloads, algorithms = args.workloads.split(","), args.algorithms.split(",")
    comparisons = len(workloads) * len(algorithms) * 2 * (1 if unavailable else 2)
    z = statistics.NormalDist().inv_cdf(1 - FAMILY_ALPHA / (2 * comparisons))
    results = {"machine": machine, "args": vars(args), "z": z, "parts": {}}
    print(f"(c) moment check: |bj - other| <= {z:.2f} standard errors ({comparisons} comparisons, "
          f"family-wise false-failure rate {FAMILY_ALPHA})")
    for name in workloads:
        for algorithm in algorithms:
            results["parts"][f"{name}/{algorithm}"] = compare_part(args, name, algorithm, not unavailable, z)
    if not args.no_sharded:
        results["sharded"] = sharded_part(args)
    failed = [f"{part}: {c['quantity']} vs {c['against']} (z {c['z']:.2f})"
              for part, r in results["parts"].items() for c in r["checks"] if not c["pass"]]
    results["load_end"] = loadavg()
    print(f"\nmoment check: {'FAILED: ' + '; '.join(failed) if failed else 'passed'} (load {loadavg()})")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
