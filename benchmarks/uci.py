"""UCI regression benchmark: deep ensembles, MultiSWAG, Laplace and SGHMC beside the published Deep Ensembles.

Protocol of Hernandez-Lobato & Adams (2015) and Lakshminarayanan et al. (2017): the fixed 90/10 splits of
``../shared/data/uci`` (or ``$BAYESJAX_UCI``), inputs and targets standardized with the training split, test
RMSE and NLL per point in original units, mean +- sd over splits. Every method uses the same network (one
hidden layer of 50 ReLU units, 100 for protein, a heteroscedastic Gaussian head: mean and log-scale) and the
same target, ``bj.log_joint`` with a N(0, 0.2^2) prior on every weight (T = 1). Recipes:

* ensemble: ``bj.ensemble`` of 5 MAP members in one jit (own init, own minibatch order), 40 epochs of Adam, batch 32,
  learning rate 1e-2 with cosine decay to 1e-4 (the recipe of tests/test_uci.py). Protein only: 3e-3 (at
  1e-2 its heteroscedastic training blows up; see benchmarks/README.md).
* multiswag: ``bj.multiswag`` with 5 members in one jit (own minibatch orders): the same 40 epochs, then 20
  epochs of Adam at 1e-3 collecting once per epoch (rank 10); 10 draws per member.
* laplace: KFAC-GGN Laplace around the first ensemble member, 50 draws.
* sghmc: 5 chains of ``bj.sghmc`` (friction 0.1, step size 1e-3 / N), 40 epochs of burn-in then 40 epochs,
  one draw per epoch and chain (200 draws).

NLL is the exact mixture NLL of the draws (``bj.metrics.nll``); ``gaussian_nll`` (moment-matched, what the
paper reports) is printed beside it. Laptop-scale CPU runs: use ``--datasets`` / ``--splits`` to subset.

Run:  python benchmarks/uci.py [--datasets a,b] [--splits N] [--methods ensemble,multiswag,laplace,sghmc]
The figures measured so far are in benchmarks/README.md.
"""
import argparse
import time
import warnings

import jax
import numpy as np
import optax

import bayesjax as bj

PUBLISHED = {  # Lakshminarayanan et al. 2017, Table 1 (Deep Ensembles, M = 5): (RMSE, sd), (NLL, sd)
    "bostonHousing": ((3.28, 1.00), (2.41, 0.25)),
    "concrete": ((6.03, 0.58), (3.06, 0.18)),
    "energy": ((2.09, 0.29), (1.38, 0.22)),
    "kin8nm": ((0.09, 0.00), (-1.20, 0.02)),
    "naval-propulsion-plant": ((0.00, 0.00), (-5.63, 0.05)),
    "power-plant": ((4.11, 0.17), (2.79, 0.04)),
    "protein-tertiary-structure": ((4.71, 0.06), (2.83, 0.02)),
    "wine-quality-red": ((0.64, 0.04), (0.94, 0.12)),
    "yacht": ((1.58, 0.48), (1.18, 0.21)),
}
MEMBERS, EPOCHS, BATCH, PRIOR_SCALE = 5, 40, 32, 0.2
LEARNING_RATE = {"protein-tertiary-structure": 3e-3}  # else 1e-2
SGHMC_STEP = 1e-3  # learning rate per example
METHODS = ("ensemble", "multiswag", "laplace", "sghmc")


class Setup:
    """Everything built once per data set, so each method compiles once and every split reuses it."""

    def __init__(self, name, first, own_data_order=True):
        self.num_data = n = len(first.y_train)
        self.steps_per_epoch = n // BATCH
        hidden = 100 if name.startswith("protein") else 50
        self.model = bj.models.mlp([hidden], num_outputs=2)
        self.lj = bj.log_joint(self.model.apply, bj.priors.gaussian(PRIOR_SCALE),
                               bj.likelihoods.heteroscedastic_gaussian(), num_data=n)
        example = first.x_train[:1]
        self.init = lambda key: self.model.init(key, example)
        pre = EPOCHS * self.steps_per_epoch
        self.pretrain_steps = pre
        rate = LEARNING_RATE.get(name, 1e-2)
        self.ensemble = bj.ensemble(bj.map(self.lj, optax.adam(optax.cosine_decay_schedule(rate, pre, alpha=0.01))),
                                    MEMBERS, init=self.init, own_data_order=own_data_order)
        swag_schedule = optax.join_schedules([optax.cosine_decay_schedule(rate, pre, alpha=1e-3 / rate),
                                              optax.constant_schedule(1e-3)], [pre])
        self.multiswag = bj.multiswag(self.lj, optax.adam(swag_schedule), MEMBERS, init=self.init, start_step=pre,
                                      collect_every=self.steps_per_epoch, rank=10, own_data_order=own_data_order)
        self.sghmc = bj.sghmc(self.lj, step_size=SGHMC_STEP, friction=0.1)


def evaluate(setup, draws, ds):
    pred = bj.predictive(setup.model.apply, draws, ds.x_test, setup.lj.likelihood)
    return bj.metrics.evaluate(pred, ds.y_test, ds.y_std)


def run_split(setup, ds, split, methods):
    key = jax.random.key(split)
    data = (ds.x_train, ds.y_train)
    out, members = {}, None
    if "ensemble" in methods or "laplace" in methods:
        start = time.perf_counter()
        post = bj.run(key, setup.ensemble, setup.init(key), data, num_steps=setup.pretrain_steps, batch_size=BATCH,
                      progress=False)
        members = post.sample(jax.random.key(0), MEMBERS)
        if "ensemble" in methods:
            out["ensemble"] = evaluate(setup, members, ds) | {"seconds": time.perf_counter() - start}
    if "multiswag" in methods:
        start = time.perf_counter()
        post = bj.run(key, setup.multiswag, setup.init(key), data,
                      num_steps=setup.pretrain_steps + 20 * setup.steps_per_epoch, batch_size=BATCH, progress=False)
        out["multiswag"] = evaluate(setup, post.sample(jax.random.key(0), 10 * MEMBERS), ds) | {
            "seconds": time.perf_counter() - start}
    if "laplace" in methods:
        start = time.perf_counter()
        try:
            first = jax.tree.map(lambda leaf: leaf[0], members)
            approx = bj.laplace(setup.lj, first, data, hessian="kfac")
            out["laplace"] = evaluate(setup, approx.sample(jax.random.key(0), 50), ds) | {
                "seconds": time.perf_counter() - start}
        except Exception as error:  # an unfinished method must not stop the table
            out["laplace"] = {"error": f"{type(error).__name__}: {error}"}
    if "sghmc" in methods:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bj.DivergenceWarning)  # counted in the table instead
            post = bj.run(key, setup.sghmc, setup.init, data, num_steps=2 * setup.pretrain_steps, batch_size=BATCH,
                          num_chains=MEMBERS, burnin=setup.pretrain_steps, thin=setup.steps_per_epoch,
                          progress=False)
            diverged = len(post.divergences)
            try:
                draws = post.sample(jax.random.key(0), EPOCHS * MEMBERS)
            except bj.DivergenceError:
                out["sghmc"] = {"error": "every chain diverged", "diverged": diverged}
                return out
        out["sghmc"] = evaluate(setup, draws, ds) | {"seconds": time.perf_counter() - start, "diverged": diverged}
    return out


def mean_sd(values):
    values = np.asarray(values, float)
    return f"{values.mean():6.2f} +- {values.std(ddof=1) if len(values) > 1 else 0.0:4.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(PUBLISHED), help="comma-separated UCI names")
    parser.add_argument("--splits", type=int, default=None, help="first N splits (default: all)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--shared-data-order", action="store_true",
                        help="ensemble members share one minibatch per step (default: each its own order)")
    parser.add_argument("--sghmc-step", type=float, default=SGHMC_STEP, help="SGHMC learning rate per example")
    args = parser.parse_args()
    globals()["SGHMC_STEP"] = args.sghmc_step
    methods = args.methods.split(",")
    print(f"device: {jax.devices()[0].device_kind} x {len(jax.devices())}; methods {', '.join(methods)}")
    header = (f"{'dataset':28s} {'method':10s} {'splits':>6s} {'RMSE':>15s} {'NLL (mixture)':>15s} "
              f"{'NLL (Gaussian)':>15s} {'s/split':>8s} | {'published DE RMSE':>18s} {'DE NLL':>15s}")
    print(header)
    for name in args.datasets.split(","):
        try:
            first = bj.data.load(name, 0)
        except FileNotFoundError:
            print(f"{name:28s} (not found; skipped)")
            continue
        num_splits = len(list(bj.data.uci_folder(name).glob("index_train_*.txt")))
        splits = range(num_splits if args.splits is None else min(args.splits, num_splits))
        setup = Setup(name, first, own_data_order=not args.shared_data_order)
        results = {}
        for split in splits:
            ds = first if split == 0 else bj.data.load(name, split)
            for method, metrics in run_split(setup, ds, split, methods).items():
                results.setdefault(method, []).append(metrics)
        (rmse_pub, rmse_sd), (nll_pub, nll_sd) = PUBLISHED[name]
        for method, all_rows in results.items():
            rows = [r for r in all_rows if "error" not in r]
            notes = []
            if len(rows) < len(all_rows):
                errors = sorted({r["error"] for r in all_rows if "error" in r})
                notes.append(f"{len(all_rows) - len(rows)} of {len(all_rows)} splits failed ({'; '.join(errors)})")
            diverged = sum(r.get("diverged", 0) for r in all_rows)
            if diverged:
                notes.append(f"{diverged} of {MEMBERS * len(all_rows)} chains diverged (left out)")
            note = ("  [" + "; ".join(notes) + "]") if notes else ""
            if not rows:
                print(f"{name:28s} {method:10s} failed{note}")
                continue
            print(f"{name:28s} {method:10s} {len(rows):6d} {mean_sd([r['rmse'] for r in rows]):>15s} "
                  f"{mean_sd([r['nll'] for r in rows]):>15s} {mean_sd([r['gaussian_nll'] for r in rows]):>15s} "
                  f"{np.mean([r['seconds'] for r in rows]):8.2f} | "
                  f"{rmse_pub:11.2f} +- {rmse_sd:4.2f} {nll_pub:8.2f} +- {nll_sd:4.2f}{note}", flush=True)


if __name__ == "__main__":
    main()
