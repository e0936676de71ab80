"""Section 4 of ``sgmcmc.py``: posteriors' (PyTorch) SGLD on the same MLP, data and start.

The parent (:func:`section`) writes the digits data and the initial weights
to a file and runs this file as a child under an interpreter that has torch
and posteriors (this one, ``--torch-python`` or ``$BENCH_TORCH_PYTHON``), so
the project's environment stays free of PyTorch. The child (:func:`measure`)
imports no JAX.

Child usage (internal)::

    python benchmarks/_sgld_posteriors.py DATA.npz --steps 200 --vmap-steps 50 --repeats 2 --chains 1,64
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from _common import emit, run_child, summary, timed
from _sgld_workload import BATCH_SIZE, HIDDEN, NUM_CLASSES, PRIOR_SCALE, LEARNING_RATE, setup


def find_torch_python(torch_python: str | None) -> str | None:
    """This interpreter if it has torch + posteriors, else ``torch_python`` / $BENCH_TORCH_PYTHON if it has them."""
    probe = "import torch, posteriors"
    candidate = sys.executable
    if subprocess.run([candidate, "-c", probe], capture_output=True).returncode == 0:
        return candidate
    candidate = torch_python or os.environ.get("BENCH_TORCH_PYTHON")
    if not candidate:
        return None
    return candidate if subprocess.run([candidate, "-c", probe], capture_output=True).returncode == 0 else None


def section(args, results: dict) -> None:
    """Runs the child on the workload's data and start; its figures go to ``results["posteriors"]``."""
    import numpy as np

    python = find_torch_python(args.torch_python)
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
        child = run_child(__file__, [path, "--steps", str(args.posteriors_steps),
                                     "--vmap-steps", str(args.posteriors_vmap_steps),
                                     "--repeats", str(args.repeats), "--chains", ",".join(map(str, chains))],
                          python=python)
    if child.result is None:
        results["posteriors"] = {"error": child.error, "python": python}
        print(f"  posteriors FAILED:\n{child.error}", flush=True)
        return
    results["posteriors"] = child.result | {"python": python}


def measure(data_path: str, num_steps: int, repeats: int, chains: list[int], vmap_steps: int) -> dict:
    """posteriors' SGLD (``posteriors.sgmcmc.sgld``) on the MLP of ``data_path``: chain-steps/s per chain count.

    Log-posterior (N * mean log-lik + log-prior) with lr = 1e-4, T = 1, beta = 0,
    so the update is the same equation. Minibatches from per-epoch
    ``torch.randperm``; ``inplace=True`` as posteriors' examples do. Many
    chains: ``torch.func.vmap(..., randomness="different")`` over the update.
    Each chain count is timed with torch's default thread count and with one
    thread, and the better is kept: on a loaded machine torch's OpenMP threads
    can collapse (see benchmarks/README.md).
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

    transform = posteriors.sgmcmc.sgld.build(log_posterior, lr=LEARNING_RATE / num_data, temperature=1.0)
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
            new_state, _ = posteriors.sgmcmc.sgld.update(state, (xb, yb), log_posterior, lr=LEARNING_RATE / num_data)
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
    thread_counts = sorted({torch.get_num_threads(), 1}, reverse=True)
    for num_chains in chains:
        fn = one_chain if num_chains == 1 else (lambda c=num_chains: many_chains(c))
        steps = num_steps if num_chains == 1 else vmap_steps
        row = {"threads": {}, "steps": steps}
        for threads in thread_counts:
            torch.set_num_threads(threads)
            try:
                fn()  # warm-up (first-call allocations, vmap tracing caches)
                times = [timed(fn).wall_s for _ in range(repeats)]
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="the .npz written by section()")
    parser.add_argument("--steps", type=int, required=True, help="steps per one-chain timing")
    parser.add_argument("--vmap-steps", type=int, required=True, help="steps per torch.func.vmap timing")
    parser.add_argument("--repeats", type=int, required=True, help="timed calls after a warm-up")
    parser.add_argument("--chains", required=True, help="comma-separated chain counts")
    args = parser.parse_args(argv)
    chains = [int(c) for c in args.chains.split(",")]
    emit(measure(args.data, args.steps, args.repeats, chains, args.vmap_steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
