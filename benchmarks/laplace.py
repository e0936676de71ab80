"""Laplace benchmark: fit and GLM predictive time and memory on an MLP, against laplace-torch.

    python benchmarks/laplace.py [--dataset digits|fashion_mnist] [--torch-python /path/to/python] [--no-torch]
                                 [--no-cached] [--repeats 2] [--map-steps N] [--json out.json]

Trains an MLP (MAP, Adam, batches of 128): 64-50-50-10 on digits, or
784-100-100-10 on Fashion-MNIST (the research protocol's network, 89,610
weights; Debian's ``dataset-fashion-mnist``), then measures in bayesjax the
fits ``bj.laplace(..., hessian="diag"|"kfac", subset="all"|"last_layer")`` on
the whole training split (1,437 digits; 60,000 images) and the GLM probit
predictive (after the diag and KFAC all-weights fits) over all 1,797 digits
or the 10,000 Fashion-MNIST test images:

* cold: in a fresh process per configuration (a child of this script, with
  JAX's persistent compilation cache disabled), the first call: trace,
  compile and run. No configuration reuses another's compiles.
* warm: the best of 3 further calls in that process (a sweep, or a second
  data set of the same shape).
* cached: a fresh process whose persistent compilation cache (a temporary
  folder) was filled by an earlier process, as the ``bayesjax`` command
  enables it. Reported apart from cold: it is not a cold start.
* memory: the child's peak RSS and XLA's scratch memory of the compiled fit
  and predictive (``memory_analysis().temp_size_in_bytes``); ``process`` is
  the child's time from interpreter start to exit.

Every process measurement runs ``--repeats`` times, bayesjax and laplace-torch
interleaved so that load from other processes falls on both alike; ranges are
min-max and ratios (laplace-torch time / bayesjax time) compare the minima.

If laplace-torch imports in ``--torch-python`` (default: this interpreter;
e.g. a separate venv with ``pip install torch laplace-torch``), the same fits
and predictives run there on the same weights and data (``_laplace_torch.py``),
each after an untimed warm-up fit in its process (PyTorch has no compile),
with the test NLL of each predictive. Otherwise that part prints that it was
skipped. After the timings both tune one prior precision by marginal
likelihood (``marglik``) and report it with the tuned predictive's test NLL.
The figures measured so far are in benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from _common import emit, peak_rss_mb, run_child, timed

START = time.perf_counter()

CONFIGS = [("diag", "all"), ("kfac", "all"), ("diag", "last_layer"), ("kfac", "last_layer")]
GLM_CONFIGS = [("diag", "all"), ("kfac", "all")]


# --------------------------------------------------------------------------- #
# bayesjax, in a child process per configuration
# --------------------------------------------------------------------------- #
def child_bayesjax(data_path: str, hessian: str, subset: str, cache_dir: str | None) -> dict:
    """One configuration, cold then warm, in this fresh process."""
    import jax

    if cache_dir:
        jax.config.update("jax_enable_compilation_cache", True)
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    else:
        jax.config.update("jax_enable_compilation_cache", False)
    import jax.numpy as jnp
    import numpy as np

    import bayesjax as bj
    from bayesjax.inference.laplace import fit, glm
    from bayesjax.inference.laplace.posterior import LogJointKey

    import_s = time.perf_counter() - START
    arrays = dict(np.load(data_path))
    kernels = [arrays[f"kernel{i}"] for i in range(sum(name.startswith("kernel") for name in arrays))]
    model = bj.models.mlp([k.shape[1] for k in kernels[:-1]], num_outputs=10)
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(),
                      num_data=len(arrays["y_train"]))
    params = {f"Dense_{i}": {"kernel": jax.device_put(k), "bias": jax.device_put(arrays[f"bias{i}"])}
              for i, k in enumerate(kernels)}
    data = (arrays["x_train"], arrays["y_train"])
    jax.block_until_ready(params)

    def cold_and_warm(fn, repeats: int = 3):
        """``fn()``'s result, the wall seconds of its first call and the best of ``repeats`` more."""
        first = timed(lambda: jax.block_until_ready(fn()))
        warm = min(timed(lambda: jax.block_until_ready(fn())).wall_s for _ in range(repeats))
        return first.result, first.wall_s, warm

    post, fit_cold, fit_warm = cold_and_warm(lambda: bj.laplace(lj, params, data, hessian=hessian, subset=subset))
    out = {"import_s": import_s, "fit_cold_s": fit_cold, "fit_warm_s": fit_warm}
    if (hessian, subset) in GLM_CONFIGS:
        _, glm_cold, glm_warm = cold_and_warm(lambda: post.predictive_glm(arrays["x_all"], link="probit").log_probs)
        out.update(glm_cold_s=glm_cold, glm_warm_s=glm_warm)

    def test_predictive(posterior):
        return posterior.predictive_glm(arrays["x_test"], link="probit")

    def nll(pred) -> float:
        return float(-jnp.mean(pred.log_prob(jnp.asarray(arrays["y_test"]))))

    pred = test_predictive(post)
    out["test_nll"] = nll(pred)
    out["test_accuracy"] = float(jnp.mean(jnp.argmax(pred.log_probs, 1) == arrays["y_test"]))
    if cache_dir is None:  # XLA scratch memory of the programs that ran (compiling them again is not timed)
        dim = sum(leaf.size for leaf in jax.tree.leaves(post.subset_mean))
        work = fit.fit_work(lj, params, data[0].shape, 10, hessian, "ggn", dim)
        lowered = fit.FIT.pick(work).lower(params, data, None, 1.0, 1.0, len(data[1]), log_joint_key=LogJointKey(lj),
                                           hessian=hessian, curvature="ggn", subset=subset, chunk_size=None)
        out["fit_scratch_mb"] = lowered.compile().memory_analysis().temp_size_in_bytes / 2**20
        if "glm_cold_s" in out:
            x_all = arrays["x_all"]
            noise = glm.function_noise(post, x_all, None, 100)
            twin = glm.GLM_MOMENTS.pick(glm.glm_work(post, x_all.shape, 10))
            memory = twin.lower(post, x_all, noise).compile().memory_analysis()
            out["glm_scratch_mb"] = memory.temp_size_in_bytes / 2**20
    out["peak_rss_mb"] = peak_rss_mb()
    out["process_s"] = time.perf_counter() - START
    # Marginal-likelihood tuning of one prior precision (after the timings, which it is not part of).
    tuned = post.optimize_prior_precision()
    out["tuned_prior_precision"] = float(jax.tree.leaves(tuned.prior_precision)[0].ravel()[0])
    out["tuned_test_nll"] = nll(test_predictive(tuned))
    return out


def bayesjax_child(args: list[str]) -> dict:
    """The figures of this script run as a child with ``args`` (raises if it fails)."""
    child = run_child(__file__, args, timeout=1800)
    if child.result is None:
        raise RuntimeError(f"child {args} failed: {child.error}")
    return child.result


# --------------------------------------------------------------------------- #
# laplace-torch, in a child process of --torch-python (_laplace_torch.py)
# --------------------------------------------------------------------------- #
def run_torch(python: str, data_path: str) -> dict:
    """laplace-torch's figures from ``_laplace_torch.py`` under ``python``, or ``{"skipped": reason}``."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_laplace_torch.py")
    child = run_child(script, [data_path, json.dumps(CONFIGS), json.dumps(GLM_CONFIGS)], python=python, timeout=1800)
    if child.result is None:
        return {"skipped": f"{python} failed: {child.error.strip()[-500:]}"}
    return child.result


# --------------------------------------------------------------------------- #
# The parent: MAP, children, tables
# --------------------------------------------------------------------------- #
HIDDEN = {"digits": [50, 50], "fashion_mnist": [100, 100]}
MAP_STEPS = {"digits": 3000, "fashion_mnist": 2 * (60_000 // 128)}


def train_map(dataset: str, num_steps: int) -> dict:
    """The MAP MLP and the data, as the arrays the children read (``x_all``: the GLM predictive's inputs)."""
    import jax
    import numpy as np
    import optax

    import bayesjax as bj

    ds = bj.data.load(dataset)
    hidden = HIDDEN[dataset]
    model = bj.models.mlp(hidden, num_outputs=10)
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=len(ds.y_train))
    params = model.init(jax.random.key(0), ds.x_train[:1])
    post = bj.run(jax.random.key(0), bj.map(lj, optax.adam(1e-3)), params, (ds.x_train, ds.y_train),
                  num_steps=num_steps, batch_size=128, progress=False)
    params = jax.tree.map(lambda leaf: np.asarray(leaf[0]), post.state.params)
    flat = lambda x: np.asarray(x, np.float32).reshape(len(x), -1)  # noqa: E731
    x_all = np.concatenate([ds.x_train, ds.x_test]) if dataset == "digits" else ds.x_test
    arrays = {"x_train": flat(ds.x_train), "y_train": np.asarray(ds.y_train, np.int64),
              "x_test": flat(ds.x_test), "y_test": np.asarray(ds.y_test, np.int64), "x_all": flat(x_all)}
    for i in range(len(hidden) + 1):
        arrays[f"kernel{i}"] = np.asarray(params[f"Dense_{i}"]["kernel"], np.float32)
        arrays[f"bias{i}"] = np.asarray(params[f"Dense_{i}"]["bias"], np.float32)
    shape = "-".join(str(n) for n in [arrays["x_train"].shape[1], *hidden, 10])
    return {"arrays": arrays, "device": str(jax.devices()[0]),
            "problem": f"{dataset} MLP {shape}, {len(ds.y_train)} training points, GLM over {len(x_all)} points"}


def span(values: list[float], unit: str = "s", digits: int = 3) -> str:
    low, high = min(values), max(values)
    return f"{low:.{digits}f}{unit}" if len(values) == 1 or high == low else f"{low:.{digits}f}-{high:.{digits}f}{unit}"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", default=sys.executable,
                        help="interpreter with torch and laplace-torch (default: this one)")
    parser.add_argument("--no-torch", action="store_true", help="skip the laplace-torch comparison")
    parser.add_argument("--no-cached", action="store_true", help="skip the persistent-cache processes")
    parser.add_argument("--repeats", type=int, default=2, help="fresh processes per measurement (default 2)")
    parser.add_argument("--dataset", choices=sorted(HIDDEN), default="digits")
    parser.add_argument("--map-steps", type=int, help="Adam steps of the MAP (default: 3000 on digits, 2 epochs "
                        "on Fashion-MNIST)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child", nargs=3, metavar=("DATA", "HESSIAN", "SUBSET"), help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        emit(child_bayesjax(*args.child, args.cache_dir))
        return {}

    trained, map_s, _ = timed(train_map, args.dataset, args.map_steps or MAP_STEPS[args.dataset])
    results: dict = {"device": trained["device"], "problem": trained["problem"], "map_train_s": map_s,
                     "repeats": args.repeats,
                     "bayesjax": {f"{h}/{s}": {"cold": [], "cached": []} for h, s in CONFIGS}, "laplace_torch": []}
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, f"{args.dataset}_mlp.npz")
        np.savez(data_path, **trained["arrays"])
        caches = {name: os.path.join(tmp, "cache_" + name.replace("/", "_")) for name in results["bayesjax"]}
        if not args.no_cached:  # fill each configuration's cache once (not measured)
            for hessian, subset in CONFIGS:
                bayesjax_child(["--child", data_path, hessian, subset, "--cache-dir", caches[f"{hessian}/{subset}"]])
        for _ in range(args.repeats):
            for hessian, subset in CONFIGS:
                name = f"{hessian}/{subset}"
                results["bayesjax"][name]["cold"].append(bayesjax_child(["--child", data_path, hessian, subset]))
                if not args.no_cached:
                    results["bayesjax"][name]["cached"].append(
                        bayesjax_child(["--child", data_path, hessian, subset, "--cache-dir", caches[name]]))
            if not args.no_torch:
                results["laplace_torch"].append(run_torch(args.torch_python, data_path))
    report(results, map_s)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


def report(results: dict, map_s: float) -> None:
    print(f"{results['problem']}, {results['device']} (MAP training {map_s:.1f} s); {results['repeats']} fresh "
          f"process(es) per cell, min-max")
    print("bayesjax (cold: fresh process, no compilation cache; warm: best of 3 later calls; cached: fresh process "
          "with a filled persistent compilation cache)")
    print(f"{'':<16}{'fit cold':>15}{'fit warm':>15}{'fit cached':>15}{'glm cold':>15}{'glm warm':>15}"
          f"{'glm cached':>15}{'scratch fit/glm':>17}{'peak RSS':>12}{'process':>15}{'NLL':>8}{'tuned':>8}")
    for name, runs in results["bayesjax"].items():
        cold, cached = runs["cold"], runs["cached"]

        def cell(rows, key, unit="s", digits=3):
            values = [r[key] for r in rows if key in r]
            return span(values, unit, digits) if values else "-"

        scratch = f"{cold[0]['fit_scratch_mb']:.1f}/{cold[0].get('glm_scratch_mb', 0):.1f}MB"
        print(f"{name:<16}{cell(cold, 'fit_cold_s'):>15}{cell(cold, 'fit_warm_s'):>15}{cell(cached, 'fit_cold_s'):>15}"
              f"{cell(cold, 'glm_cold_s'):>15}{cell(cold, 'glm_warm_s'):>15}{cell(cached, 'glm_cold_s'):>15}"
              f"{scratch:>17}{cell(cold, 'peak_rss_mb', 'MB', 0):>12}{cell(cold, 'process_s', 's', 1):>15}"
              f"{cold[0]['test_nll']:>8.4f}{cold[0]['tuned_test_nll']:>8.4f}")
    torch_runs = [r for r in results["laplace_torch"] if "skipped" not in r]
    if not torch_runs:
        reason = results["laplace_torch"][0]["skipped"] if results["laplace_torch"] else "--no-torch"
        print(f"laplace-torch comparison skipped: {reason}")
        return
    first = torch_runs[0]
    print(f"laplace-torch {first['version']} (torch {first['torch']}, {first['threads']} threads), "
          f"peak RSS {span([r['peak_rss_mb'] for r in torch_runs], 'MB', 0)}; ratio = laplace-torch / bayesjax "
          f"(minima)")
    print(f"{'':<16}{'fit':>15}{'glm':>15}{'NLL':>8}  {'fit ratio cold':>15}{'warm':>8}{'cached':>8}"
          f"{'glm ratio cold':>16}{'warm':>8}{'cached':>8}{'tuned NLL':>10}{'precision (bayesjax)':>22}")
    for name, runs in results["bayesjax"].items():
        theirs = [r[name] for r in torch_runs]
        fit_t, glm_t = [t["fit_s"] for t in theirs], [t["glm_s"] for t in theirs if "glm_s" in t]

        def ratio(their_times, rows, key):
            ours = [r[key] for r in rows if key in r]
            return f"{min(their_times) / min(ours):.1f}x" if their_times and ours else "-"

        cold, cached = runs["cold"], runs["cached"]
        print(f"{name:<16}{span(fit_t):>15}{span(glm_t) if glm_t else '-':>15}{theirs[0]['test_nll']:>8.4f}  "
              f"{ratio(fit_t, cold, 'fit_cold_s'):>15}{ratio(fit_t, cold, 'fit_warm_s'):>8}"
              f"{ratio(fit_t, cached, 'fit_cold_s'):>8}{ratio(glm_t, cold, 'glm_cold_s'):>16}"
              f"{ratio(glm_t, cold, 'glm_warm_s'):>8}{ratio(glm_t, cached, 'glm_cold_s'):>8}"
              f"{theirs[0]['tuned_test_nll']:>10.4f}{theirs[0]['tuned_prior_precision']:>11.3f} "
              f"({cold[0]['tuned_prior_precision']:.3f})")


if __name__ == "__main__":
    main()
