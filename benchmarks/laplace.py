"""Laplace benchmark: fit time, memory and GLM predictive time on the digits MLP, against laplace-torch.

    python benchmarks/laplace.py [--torch-python /path/to/python] [--no-torch] [--json out.json]

Trains a 64-50-50-10 MLP on digits (MAP, Adam), then times in bayesjax:

* the fits ``bj.laplace(..., hessian="diag"|"kfac", subset="all"|"last_layer")``,
* the GLM probit predictive over all 1,797 digits,

each cold (the first call in the process: trace + compile + run) and warm (the
best of 3 repeated calls, as in a sweep or a second data set of the same shape), with the XLA scratch memory of each compiled
program (``memory_analysis().temp_size_in_bytes``) and the process's peak RSS.

If laplace-torch imports in ``--torch-python`` (default: this interpreter;
e.g. a separate venv with ``pip install torch laplace-torch``), the same fits
run there on the same weights and data, and the ratios are printed with the
test NLL of each predictive. Otherwise that part prints that it was skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time

START = time.perf_counter()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import bayesjax as bj  # noqa: E402
from bayesjax.inference.laplace import fit as laplace_fit  # noqa: E402
from bayesjax.inference.laplace import glm, laplace  # noqa: E402
from bayesjax.inference.laplace import algorithm  # noqa: E402
from bayesjax.inference.laplace.posterior import Target  # noqa: E402

CONFIGS = [("diag", "all"), ("kfac", "all"), ("diag", "last_layer"), ("kfac", "last_layer")]
GLM_CONFIGS = [("diag", "all"), ("kfac", "all")]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_map(ds, num_steps: int):
    model = bj.models.mlp([50, 50], num_outputs=10)
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=len(ds.y_train))
    params = model.init(jax.random.key(0), ds.x_train[:1])
    post = bj.run(jax.random.key(0), bj.map(lj, optax.adam(1e-3)), params, (ds.x_train, ds.y_train),
                  num_steps=num_steps, batch_size=128, progress=False)
    return model, lj, jax.tree.map(lambda leaf: leaf[0], post.state.params)


def timed(fn, repeats: int = 3):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        warm.append(time.perf_counter() - start)
    return out, cold, min(warm)


def scratch_mb(jitted, *args, **kwargs) -> float:
    return jitted.lower(*args, **kwargs).compile().memory_analysis().temp_size_in_bytes / 2**20


def run_bayesjax(ds, model, lj, params, x_all, y_all):
    results = {}
    data = (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train))
    for hessian, subset in CONFIGS:
        name = f"{hessian}/{subset}"
        post, cold, warm = timed(lambda: laplace(lj, params, data, hessian=hessian, subset=subset))
        state = algorithm.init(params, hessian, subset)
        memory = scratch_mb(laplace_fit._fit, state, data, target=Target(lj), hessian=hessian, curvature="ggn",
                            subset=subset, chunk_size=None)
        pred = post.predictive_glm(ds.x_test, link="probit")
        results[name] = {"fit_cold_s": cold, "fit_warm_s": warm, "fit_scratch_mb": memory,
                         "test_nll": float(-jnp.mean(pred.log_prob(jnp.asarray(ds.y_test)))),
                         "test_accuracy": float(jnp.mean(jnp.argmax(pred.log_probs, 1) == ds.y_test))}
        if (hessian, subset) in GLM_CONFIGS:
            _, cold, warm = timed(lambda: post.predictive_glm(x_all, link="probit").log_probs)
            noise = glm.function_noise(post, jnp.asarray(x_all), jax.random.key(0), 100)
            memory = scratch_mb(glm.glm_moments, post, jnp.asarray(x_all), noise)
            results[name].update({"glm_cold_s": cold, "glm_warm_s": warm, "glm_scratch_mb": memory})
    return results


TORCH_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    try:
        import laplace
        from laplace import Laplace
    except Exception as error:  # noqa: BLE001
        print(json.dumps({"skipped": f"laplace-torch not importable: {type(error).__name__}: {error}"}))
        sys.exit(0)
    import importlib.metadata
    d = np.load(sys.argv[1])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 50), nn.ReLU(), nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, 10))
    with torch.no_grad():
        for i, layer in enumerate([model[0], model[2], model[4]]):
            layer.weight.copy_(torch.from_numpy(d[f"kernel{i}"].T.copy()))
            layer.bias.copy_(torch.from_numpy(d[f"bias{i}"]))
    x_train, y_train = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"]).long()
    x_test, y_test = torch.from_numpy(d["x_test"]), torch.from_numpy(d["y_test"]).long()
    x_all = torch.from_numpy(d["x_all"])
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=128)
    out = {"version": importlib.metadata.version("laplace-torch"), "torch": torch.__version__,
           "threads": torch.get_num_threads()}
    # Untimed warm-up: the first fit in a process pays one-time set-up costs.
    warm_up = Laplace(model, "classification", subset_of_weights="all", hessian_structure="kron")
    warm_up.fit(DataLoader(TensorDataset(x_train[:128], y_train[:128]), batch_size=128))
    for hessian, subset in json.loads(sys.argv[2]):
        name = f"{hessian}/{subset}"
        structure = {"diag": "diag", "kfac": "kron"}[hessian]
        start = time.perf_counter()
        la = Laplace(model, "classification", subset_of_weights=subset, hessian_structure=structure)
        la.fit(loader)
        fit_s = time.perf_counter() - start
        with torch.no_grad():
            probs = torch.cat([la(b, pred_type="glm", link_approx="probit") for b in torch.split(x_test, 256)])
        nll = float(-torch.log(probs[torch.arange(len(y_test)), y_test]).mean())
        acc = float((probs.argmax(1) == y_test).float().mean())
        out[name] = {"fit_s": fit_s, "test_nll": nll, "test_accuracy": acc,
                     "backend": type(la.backend).__name__}
        if [hessian, subset] in json.loads(sys.argv[3]):
            # In batches of 256: all 1,797 points at once took > 20 GB for KFAC over all weights.
            start = time.perf_counter()
            with torch.no_grad():
                for batch in torch.split(x_all, 256):
                    la(batch, pred_type="glm", link_approx="probit")
            out[name]["glm_s"] = time.perf_counter() - start
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
    """
)


def run_torch(python: str, ds, params, x_all):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits_mlp.npz")
        arrays = {"x_train": ds.x_train.reshape(len(ds.x_train), -1), "y_train": ds.y_train,
                  "x_test": ds.x_test.reshape(len(ds.x_test), -1), "y_test": ds.y_test,
                  "x_all": x_all.reshape(len(x_all), -1)}
        for i in range(3):
            arrays[f"kernel{i}"] = np.asarray(params[f"Dense_{i}"]["kernel"])
            arrays[f"bias{i}"] = np.asarray(params[f"Dense_{i}"]["bias"])
        np.savez(path, **{k: np.asarray(v, np.int64 if k.startswith("y") else np.float32) for k, v in arrays.items()})
        script = os.path.join(tmp, "torch_laplace.py")
        with open(script, "w") as f:
            f.write(TORCH_SCRIPT)
        try:
            proc = subprocess.run([python, script, path, json.dumps(CONFIGS), json.dumps(GLM_CONFIGS)],
                                  capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as error:
            return {"skipped": f"could not run {python}: {error}"}
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            return {"skipped": f"{python} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"}
        return json.loads(lines[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", default=sys.executable,
                        help="interpreter with torch and laplace-torch (default: this one)")
    parser.add_argument("--no-torch", action="store_true", help="skip the laplace-torch comparison")
    parser.add_argument("--map-steps", type=int, default=3000)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    ds = bj.data.load("digits")
    x_all = np.concatenate([ds.x_train, ds.x_test])
    y_all = np.concatenate([ds.y_train, ds.y_test])
    start = time.perf_counter()
    model, lj, params = train_map(ds, args.map_steps)
    map_s = time.perf_counter() - start
    results = {"device": str(jax.devices()[0]), "num_train": len(ds.y_train), "num_glm_points": len(x_all),
               "map_train_s": map_s, "bayesjax": run_bayesjax(ds, model, lj, params, x_all, y_all)}
    results["bayesjax_peak_rss_mb"] = peak_rss_mb()
    results["bayesjax_process_s"] = time.perf_counter() - START

    print(f"digits MLP 64-50-50-10, {len(ds.y_train)} training points, GLM over {len(x_all)} points, "
          f"{results['device']} (MAP training {map_s:.1f} s)")
    print(f"{'bayesjax':<18}{'fit cold':>10}{'fit warm':>10}{'scratch':>10}{'glm cold':>10}{'glm warm':>10}"
          f"{'test NLL':>10}{'acc':>7}")
    for name, r in results["bayesjax"].items():
        glm_cold = f"{r['glm_cold_s']:.3f}s" if "glm_cold_s" in r else "-"
        glm_warm = f"{r['glm_warm_s']:.3f}s" if "glm_warm_s" in r else "-"
        print(f"{name:<18}{r['fit_cold_s']:>9.3f}s{r['fit_warm_s']:>9.3f}s{r['fit_scratch_mb']:>8.1f}MB"
              f"{glm_cold:>10}{glm_warm:>10}{r['test_nll']:>10.4f}{r['test_accuracy']:>7.3f}")
    print(f"bayesjax process: {results['bayesjax_process_s']:.1f} s from import, "
          f"peak RSS {results['bayesjax_peak_rss_mb']:.0f} MB")

    torch_results = ({"skipped": "--no-torch"} if args.no_torch
                     else run_torch(args.torch_python, ds, params, x_all))
    results["laplace_torch"] = torch_results
    if "skipped" in torch_results:
        print(f"laplace-torch comparison skipped: {torch_results['skipped']}")
    else:
        print(f"laplace-torch {torch_results['version']} (torch {torch_results['torch']}, "
              f"{torch_results['threads']} threads), peak RSS {torch_results['peak_rss_mb']:.0f} MB")
        print(f"{'laplace-torch':<18}{'fit':>10}{'glm':>10}{'test NLL':>10}{'acc':>7}  "
              f"{'fit ratio warm / cold':>22}{'glm ratio warm / cold':>23}")
        for name, theirs in torch_results.items():
            if not isinstance(theirs, dict):
                continue
            ours = results["bayesjax"][name]
            fit_ratio = f"{theirs['fit_s'] / ours['fit_warm_s']:.1f}x / {theirs['fit_s'] / ours['fit_cold_s']:.1f}x"
            glm_s = f"{theirs['glm_s']:.3f}s" if "glm_s" in theirs else "-"
            glm_ratio = (f"{theirs['glm_s'] / ours['glm_warm_s']:.1f}x / {theirs['glm_s'] / ours['glm_cold_s']:.1f}x"
                         if "glm_s" in theirs else "-")
            print(f"{name:<18}{theirs['fit_s']:>9.3f}s{glm_s:>10}{theirs['test_nll']:>10.4f}"
                  f"{theirs['test_accuracy']:>7.3f}  {fit_ratio:>22}{glm_ratio:>23}   ({theirs['backend']})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
