"""Laplace benchmark: fit and GLM predictive time and memory on an MLP or a CNN, against laplace-torch.

    python benchmarks/laplace.py [--dataset digits|fashion_mnist] [--model mlp|cnn] [--torch-python PATH]
                                 [--no-torch] [--torch-timeout 600] [--no-cached] [--repeats 2]
                                 [--configs diag/all,kfac/all,diag/last_layer,kfac/last_layer]
                                 [--warm-repeats 3] [--map-steps N] [--json out.json]

Trains a network (MAP, Adam, batches of 128): an MLP 64-50-50-10 on digits,
or on Fashion-MNIST (Debian's ``dataset-fashion-mnist``) the research
protocol's networks: the MLP 784-100-100-10 (89,610 weights) or, with
``--model cnn``, Fortuin et al. (2021)'s CNN (``bj.models.fortuin_cnn``,
68,938 weights), then measures in bayesjax the
fits ``bj.laplace(..., hessian="diag"|"kfac", subset="all"|"last_layer")`` on
the whole training split (1,437 digits; 60,000 images) and the GLM probit
predictive (after the diag and KFAC all-weights fits) over all 1,797 digits
or the 10,000 Fashion-MNIST test images:

* cold: in a fresh process per configuration (a child of this script, with
  JAX's persistent compilation cache disabled), the first call: trace,
  compile and run. No configuration reuses another's compiles.
* warm: the best of ``--warm-repeats`` further calls in that process (a
  sweep, or a second data set of the same shape).
* cached: a fresh process whose persistent compilation cache (a temporary
  folder) was filled by an earlier process, as the ``bayesjax`` command
  enables it. Reported apart from cold: it is not a cold start.
* memory: the child's peak RSS (before the scratch sizes are compiled) and
  XLA's scratch memory of the compiled fit and predictive
  (``memory_analysis().temp_size_in_bytes``); ``process`` is the child's
  time from interpreter start to exit. The child loads the data as a user
  does, with ``bj.data.load`` (whose arrays JAX shares on the CPU instead
  of copying); laplace-torch's child shares its NumPy arrays
  (``torch.from_numpy``).

Every process measurement runs ``--repeats`` times, bayesjax and laplace-torch
interleaved so that load from other processes falls on both alike; ranges are
min-max and ratios (laplace-torch time / bayesjax time) compare the minima.

If laplace-torch imports in ``--torch-python`` (default: this interpreter;
e.g. a separate venv with ``pip install torch laplace-torch``), the same fits
and predictives run there on the same weights and data (``_laplace_torch.py``,
one process per configuration, stopped after ``--torch-timeout`` seconds and
reported as not finished: then the ratio is a lower bound), each after an
untimed warm-up fit in its process (PyTorch has no compile), with the test
NLL of each predictive and its logits' largest difference from JAX's on 8
test inputs (the same network). Otherwise that part prints that it was
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
def child_bayesjax(data_path: str, hessian: str, subset: str, cache_dir: str | None, warm_repeats: int) -> dict:
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
    from flax.traverse_util import unflatten_dict

    import bayesjax as bj
    from bayesjax.inference.laplace import fit, glm
    from bayesjax.inference.laplace.posterior import LogJointKey

    import_s = time.perf_counter() - START
    with np.load(data_path) as saved:  # the weights (the data arrays there are laplace-torch's)
        spec, dataset = str(saved["network"]), str(saved["dataset"])
        params = unflatten_dict({k[2:]: jax.device_put(saved[k]) for k in saved.files if k.startswith("w:")}, sep="/")
    arrays = data_arrays(bj.data.load(dataset), spec)  # as a user loads them
    model = network(spec)
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(),
                      num_data=len(arrays["y_train"]))
    data = (arrays["x_train"], arrays["y_train"])
    jax.block_until_ready(params)

    def cold_and_warm(fn, repeats: int = warm_repeats):
        """``fn()``'s result, the wall seconds of its first call and the best of ``repeats`` more."""
        first = timed(lambda: jax.block_until_ready(fn()))
        warm = min((timed(lambda: jax.block_until_ready(fn())).wall_s for _ in range(repeats)), default=None)
        return first.result, first.wall_s, warm

    post, fit_cold, fit_warm = cold_and_warm(lambda: bj.laplace(lj, params, data, hessian=hessian, subset=subset))
    out = {"import_s": import_s, "fit_cold_s": fit_cold, **({"fit_warm_s": fit_warm} if fit_warm is not None else {})}
    if (hessian, subset) in GLM_CONFIGS:
        _, glm_cold, glm_warm = cold_and_warm(lambda: post.predictive_glm(arrays["x_all"], link="probit").log_probs)
        out.update(glm_cold_s=glm_cold, **({"glm_warm_s": glm_warm} if glm_warm is not None else {}))

    def test_predictive(posterior):
        return posterior.predictive_glm(arrays["x_test"], link="probit")

    def nll(pred) -> float:
        return float(-jnp.mean(pred.log_prob(jnp.asarray(arrays["y_test"]))))

    pred = test_predictive(post)
    out["test_nll"] = nll(pred)
    out["test_accuracy"] = float(jnp.mean(jnp.argmax(pred.log_probs, 1) == arrays["y_test"]))
    out["peak_rss_mb"] = peak_rss_mb()  # before compiling again for the scratch sizes below
    if cache_dir is None:  # XLA scratch memory of the programs that ran (compiling them again is not timed)
        dim = sum(leaf.size for leaf in jax.tree.leaves(post.subset_mean))
        work = fit.fit_work(lj, params, data[0].shape, 10, hessian, "ggn", dim)
        lowered = fit.FIT.pick(work).lower(params, data, None, 1.0, 1.0, len(data[1]), log_joint_key=LogJointKey(lj),
                                           hessian=hessian, curvature="ggn", subset=subset, chunk_size=None,
                                           mode_check=True)
        out["fit_scratch_mb"] = lowered.compile().memory_analysis().temp_size_in_bytes / 2**20
        if "glm_cold_s" in out:
            x_all = arrays["x_all"]
            noise = glm.function_noise(post, x_all, None, 100)
            twin = glm.GLM_MOMENTS.pick(glm.glm_work(post, x_all.shape, 10))
            memory = twin.lower(post, x_all, noise).compile().memory_analysis()
            out["glm_scratch_mb"] = memory.temp_size_in_bytes / 2**20
    out["process_s"] = time.perf_counter() - START
    # Marginal-likelihood tuning of one prior precision (after the timings, which it is not part of).
    tuned = post.optimize_prior_precision()
    out["tuned_prior_precision"] = float(jax.tree.leaves(tuned.prior_precision)[0].ravel()[0])
    out["tuned_test_nll"] = nll(test_predictive(tuned))
    return out


def bayesjax_child(args: list[str]) -> dict:
    """The figures of this script run as a child with ``args`` (raises if it fails)."""
    child = run_child(__file__, args, timeout=3600)
    if child.result is None:
        raise RuntimeError(f"child {args} failed: {child.error}")
    return child.result


# --------------------------------------------------------------------------- #
# laplace-torch, in a child process of --torch-python (_laplace_torch.py)
# --------------------------------------------------------------------------- #
def run_torch(python: str, data_path: str, config: tuple[str, str], timeout: float) -> dict:
    """laplace-torch's figures for one ``(hessian, subset)`` from ``_laplace_torch.py`` under ``python``.

    ``{"skipped": reason}`` if it cannot run; ``"timed_out": seconds`` added
    to the stages it finished if it did not finish within ``timeout`` seconds.
    """
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_laplace_torch.py")
    glm_configs = [list(config)] if config in GLM_CONFIGS else []
    child = run_child(script, [data_path, json.dumps([list(config)]), json.dumps(glm_configs)], python=python,
                      timeout=timeout)
    if child.error == "timed out":  # with what it measured before (it emits after each stage)
        return {**(child.result or {}), "timed_out": timeout}
    if child.result is None:
        return {"skipped": f"{python} failed: {child.error.strip()[-500:]}"}
    return child.result


# --------------------------------------------------------------------------- #
# The parent: MAP, children, tables
# --------------------------------------------------------------------------- #
HIDDEN = {"digits": [50, 50], "fashion_mnist": [100, 100]}
MAP_STEPS = {"digits": 3000, "fashion_mnist": 2 * (60_000 // 128)}


def network(spec: str):
    """The benchmark's network from its name: ``"mlp 100,100"`` or ``"cnn"`` (Fortuin et al.'s)."""
    import bayesjax as bj

    if spec == "cnn":
        return bj.models.fortuin_cnn(10)
    return bj.models.mlp([int(w) for w in spec.split()[1].split(",")], num_outputs=10)


def train_map(dataset: str, model_name: str, num_steps: int) -> dict:
    """The MAP network and the data, as the arrays the children read (``x_all``: the GLM predictive's inputs).

    Weights are saved as ``w:<path>`` (flax's names joined by ``/``); the
    MLP's inputs flattened, the CNN's as NHWC images; ``logits``: the MAP's
    on the first 8 test inputs, for laplace-torch's copy of the network.
    """
    import jax
    import numpy as np
    import optax
    from flax.traverse_util import flatten_dict

    import bayesjax as bj

    ds = bj.data.load(dataset)
    spec = "cnn" if model_name == "cnn" else "mlp " + ",".join(map(str, HIDDEN[dataset]))
    model = network(spec)
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=len(ds.y_train))
    params = model.init(jax.random.key(0), ds.x_train[:1])
    post = bj.run(jax.random.key(0), bj.map(lj, optax.adam(1e-3)), params, (ds.x_train, ds.y_train),
                  num_steps=num_steps, batch_size=128, progress=False)
    params = jax.tree.map(lambda leaf: np.asarray(leaf[0], np.float32), post.state.params)
    data = data_arrays(ds, spec)
    arrays = {"network": np.asarray(spec), "dataset": np.asarray(dataset),
              **{k: np.asarray(v, np.int64 if k.startswith("y") else np.float32) for k, v in data.items()},
              "logits": np.asarray(model.apply(params, data["x_test"][:8]), np.float32),
              **{"w:" + name: leaf for name, leaf in flatten_dict(params, sep="/").items()}}
    size = sum(leaf.size for leaf in jax.tree.leaves(params))
    return {"arrays": arrays, "device": str(jax.devices()[0]),
            "problem": f"{dataset} {spec} ({size:,} weights), {len(ds.y_train)} training points, GLM over "
                       f"{len(data['x_all'])} points"}


def data_arrays(ds, spec: str) -> dict:
    """Training and test arrays of ``ds`` for network ``spec`` (the MLP's inputs flattened: views, no copies).

    ``x_all``: the GLM predictive's inputs, every digit or the 10,000
    Fashion-MNIST test images.
    """
    import numpy as np

    shape = (lambda x: x) if spec == "cnn" else (lambda x: x.reshape(len(x), -1))
    x_all = np.concatenate([ds.x_train, ds.x_test]) if ds.name == "digits" else ds.x_test
    return {"x_train": shape(ds.x_train), "y_train": ds.y_train, "x_test": shape(ds.x_test), "y_test": ds.y_test,
            "x_all": shape(x_all)}


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
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp",
                        help="the network (cnn: Fortuin et al.'s, Fashion-MNIST only)")
    parser.add_argument("--configs", default=",".join(f"{h}/{s}" for h, s in CONFIGS),
                        help="comma-separated HESSIAN/SUBSET to measure (default: all four)")
    parser.add_argument("--warm-repeats", type=int, default=3,
                        help="warm calls after the cold one (default 3; 0: none)")
    parser.add_argument("--torch-timeout", type=float, default=600,
                        help="seconds per laplace-torch configuration before it counts as not finished")
    parser.add_argument("--map-steps", type=int, help="Adam steps of the MAP (default: 3000 on digits, 2 epochs "
                        "on Fashion-MNIST)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child", nargs=3, metavar=("DATA", "HESSIAN", "SUBSET"), help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        emit(child_bayesjax(*args.child, args.cache_dir, args.warm_repeats))
        return {}
    if args.model == "cnn" and args.dataset != "fashion_mnist":
        parser.error("--model cnn is Fortuin et al.'s Fashion-MNIST network: add --dataset fashion_mnist")
    configs = [tuple(name.split("/")) for name in args.configs.split(",")]
    if not set(configs) <= set(CONFIGS):
        parser.error(f"--configs: each of {', '.join(f'{h}/{s}' for h, s in CONFIGS)}")

    trained, map_s, _ = timed(train_map, args.dataset, args.model, args.map_steps or MAP_STEPS[args.dataset])
    results: dict = {"device": trained["device"], "problem": trained["problem"], "map_train_s": map_s,
                     "repeats": args.repeats, "warm_repeats": args.warm_repeats,
                     "bayesjax": {f"{h}/{s}": {"cold": [], "cached": []} for h, s in configs}, "laplace_torch": []}
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, f"{args.dataset}_{args.model}.npz")
        np.savez(data_path, **trained["arrays"])
        caches = {name: os.path.join(tmp, "cache_" + name.replace("/", "_")) for name in results["bayesjax"]}
        if not args.no_cached:  # fill each configuration's cache once (not measured)
            for hessian, subset in configs:
                bayesjax_child(["--child", data_path, hessian, subset, "--cache-dir", caches[f"{hessian}/{subset}"],
                                "--warm-repeats", str(args.warm_repeats)])
        for _ in range(args.repeats):
            torch_run: dict = {}
            for hessian, subset in configs:
                name = f"{hessian}/{subset}"
                child = ["--child", data_path, hessian, subset, "--warm-repeats", str(args.warm_repeats)]
                results["bayesjax"][name]["cold"].append(bayesjax_child(child))
                if not args.no_cached:
                    results["bayesjax"][name]["cached"].append(bayesjax_child(child + ["--cache-dir", caches[name]]))
                if not args.no_torch:
                    torch_run[name] = run_torch(args.torch_python, data_path, (hessian, subset), args.torch_timeout)
            if torch_run:
                results["laplace_torch"].append(torch_run)
    report(results, map_s)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


def report(results: dict, map_s: float) -> None:
    print(f"{results['problem']}, {results['device']} (MAP training {map_s:.1f} s); {results['repeats']} fresh "
          f"process(es) per cell, min-max")
    print(f"bayesjax (cold: fresh process, no compilation cache; warm: best of {results['warm_repeats']} later calls; "
          f"cached: fresh process with a filled persistent compilation cache)")
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
    runs = [run for repeat in results["laplace_torch"] for run in repeat.values()]
    started = [run for run in runs if "version" in run]
    if not started:
        print(f"laplace-torch comparison skipped: {runs[0].get('skipped', 'not ready') if runs else '--no-torch'}")
        return
    first = started[0]
    print(f"laplace-torch {first['version']} (torch {first['torch']}, {first['threads']} threads), one process per "
          f"configuration, peak RSS {span([r['peak_rss_mb'] for r in started], 'MB', 0)}, logits within "
          f"{max(r['max_abs_logit_diff'] for r in started):.1e} of JAX's; ratio = laplace-torch / bayesjax (minima; "
          f"'>': laplace-torch's fit did not finish within the timeout, less its start-up)")
    print(f"{'':<16}{'fit':>15}{'glm':>15}{'NLL':>8}  {'fit ratio cold':>15}{'warm':>8}{'cached':>8}"
          f"{'glm ratio cold':>16}{'warm':>8}{'cached':>8}{'tuned NLL':>10}{'precision (bayesjax)':>22}")
    for name, rows in results["bayesjax"].items():
        mine = [repeat[name] for repeat in results["laplace_torch"] if name in repeat]
        theirs = [run[name] for run in mine if name in run]
        cold, cached = rows["cold"], rows["cached"]
        fit_t, glm_t = [t["fit_s"] for t in theirs], [t["glm_s"] for t in theirs if "glm_s" in t]
        if not fit_t:
            bounds = [run["timed_out"] - run["ready_s"] for run in mine if "timed_out" in run and "ready_s" in run]
            lower = f">{max(bounds) / min(r['fit_cold_s'] for r in cold):.1f}x" if bounds else "-"
            print(f"{name:<16}{'not finished' if bounds else 'skipped':>15}{'':>15}{'':>8}  {lower:>15}")
            continue

        def ratio(their_times, ours_rows, key):
            ours = [r[key] for r in ours_rows if key in r]
            return f"{min(their_times) / min(ours):.1f}x" if their_times and ours else "-"

        def value(key, fmt):
            found = [t[key] for t in theirs if key in t]
            return format(found[0], fmt) if found else "-"

        tuned = f"{value('tuned_prior_precision', '.3f')} ({cold[0]['tuned_prior_precision']:.3f})"
        print(f"{name:<16}{span(fit_t):>15}{span(glm_t) if glm_t else '-':>15}{value('test_nll', '.4f'):>8}  "
              f"{ratio(fit_t, cold, 'fit_cold_s'):>15}{ratio(fit_t, cold, 'fit_warm_s'):>8}"
              f"{ratio(fit_t, cached, 'fit_cold_s'):>8}{ratio(glm_t, cold, 'glm_cold_s'):>16}"
              f"{ratio(glm_t, cold, 'glm_warm_s'):>8}{ratio(glm_t, cached, 'glm_cold_s'):>8}"
              f"{value('tuned_test_nll', '.4f'):>10}{tuned:>22}")
        if any("timed_out" in run for run in mine):
            print(f"{'':<16}(laplace-torch stopped at {mine[0].get('timed_out', '?')} s before its last stage)")


if __name__ == "__main__":
    main()
