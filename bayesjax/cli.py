"""The ``bayesjax`` command.

``bayesjax compare --dataset digits --methods map`` trains each method on the
same data, evaluates its Bayesian model average on the test split and writes
``results.json`` and ``reliability.png`` into ``--out``.

``bayesjax sweep --dataset digits --method sgld`` runs a cold-posterior
temperature x seed sweep (resumable) and writes ``results.json``,
``results.csv`` and ``sweep.png`` into ``--out``.

On the CPU the command splits the host into one device per core and turns on
JAX's persistent compilation cache.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from typing import Callable, NamedTuple


class MethodSetup(NamedTuple):
    """How the command runs one method: its algorithm and driver settings."""

    algorithm: object
    run_kwargs: dict
    num_predictive_samples: int


def _map_setup(log_joint, args) -> MethodSetup:
    import optax

    from bayesjax.inference.map import build

    return MethodSetup(build(log_joint, optax.adam(args.learning_rate)), {}, 1)


def _chain_kwargs(args, num_chains: int = 4) -> dict:
    """Sampler runs: several chains, second half kept, 25 draws per chain."""
    burnin = args.steps // 2
    return {"num_chains": num_chains, "burnin": burnin, "thin": max(1, (args.steps - burnin) // 25)}


def _sgld_setup(log_joint, args) -> MethodSetup:
    from bayesjax.inference.sgmcmc import build_sgld

    return MethodSetup(build_sgld(log_joint, args.step_size), _chain_kwargs(args), 100)


def _sghmc_setup(log_joint, args) -> MethodSetup:
    from bayesjax.inference.sgmcmc import build_sghmc

    # SGD-with-momentum form: the drift's effective learning rate is step_size / friction.
    friction = 0.1
    return MethodSetup(build_sghmc(log_joint, friction * args.step_size, friction), _chain_kwargs(args), 100)


def _cyclical_setup(log_joint, args) -> MethodSetup:
    from bayesjax.inference.sgmcmc import build_cyclical_sgld

    algorithm = build_cyclical_sgld(log_joint, 2 * args.step_size, num_cycles=4, num_steps=args.steps)
    return MethodSetup(algorithm, {"num_chains": 4, "thin": max(1, args.steps // 100)}, 100)


def _meanfield_vi_setup(log_joint, args) -> MethodSetup:
    import optax

    from bayesjax.inference.vi import build_meanfield

    return MethodSetup(build_meanfield(log_joint, optax.adam(args.learning_rate)), {}, 100)


def _ensemble_setup(log_joint, args) -> MethodSetup:
    """Deep ensemble: MAP chains from independent initializations, one draw per member."""
    setup = _map_setup(log_joint, args)
    return setup._replace(run_kwargs={"num_chains": 5, "independent_init": True}, num_predictive_samples=5)


METHODS: dict[str, Callable] = {
    "map": _map_setup,
    "deep_ensemble": _ensemble_setup,
    "meanfield_vi": _meanfield_vi_setup,
    "sgld": _sgld_setup,
    "sghmc": _sghmc_setup,
    "cyclical_sgld": _cyclical_setup,
}


def _enable_compilation_cache() -> None:
    """Persistent XLA cache: a warm compile costs ~0.1 s instead of seconds."""
    import jax

    cache = os.environ.get("BAYESJAX_CACHE", os.path.join(pathlib.Path.home(), ".cache", "bayesjax", "xla"))
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)


def _model(args, dataset):
    from bayesjax import models

    num_outputs = dataset.num_classes if dataset.task == "classification" else 1
    if args.model == "cnn":
        return models.cnn(num_outputs)
    return models.mlp([int(h) for h in args.hidden.split(",")], num_outputs)


def _likelihood(dataset):
    from bayesjax import likelihoods

    return likelihoods.categorical() if dataset.task == "classification" else likelihoods.gaussian(1.0)


def compare(args) -> list[dict]:
    """Trains and evaluates every method in ``args.methods``; returns one row per method."""
    import jax

    import bayesjax as bj

    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; available: {sorted(METHODS)}")
    dataset = bj.data.load(args.dataset, split=args.split, root=args.data_root)
    model = _model(args, dataset)
    likelihood = _likelihood(dataset)
    prior = bj.priors.gaussian(args.prior_scale)
    log_joint = bj.log_joint(model.apply, prior, likelihood, num_data=len(dataset.y_train),
                             temperature=args.temperature)
    key = jax.random.key(args.seed)
    init_key, run_key, sample_key = jax.random.split(key, 3)
    params = model.init(init_key, dataset.x_train[:1])

    rows, predictives = [], {}
    for name in args.methods:
        setup = METHODS[name](log_joint, args)
        run_kwargs = dict(setup.run_kwargs)
        start_params = (lambda k: model.init(k, dataset.x_train[:1])) if run_kwargs.pop("independent_init", False) \
            else params
        start = time.perf_counter()
        posterior = bj.run(run_key, setup.algorithm, start_params, (dataset.x_train, dataset.y_train),
                           num_steps=args.steps, batch_size=min(args.batch_size, len(dataset.y_train)),
                           progress=not args.quiet, **run_kwargs)
        jax.block_until_ready(posterior.state)
        seconds = time.perf_counter() - start
        samples = posterior.sample(sample_key, setup.num_predictive_samples)
        start = time.perf_counter()
        pred = jax.block_until_ready(bj.predictive(model.apply, samples, dataset.x_test, likelihood))
        predict_seconds = time.perf_counter() - start
        metrics = bj.metrics.evaluate(pred, dataset.y_test, y_std=dataset.y_std)
        predictives[name] = pred
        rows.append({"method": name, "train_seconds": seconds, "predict_seconds": predict_seconds, **metrics})

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k != "func"}
    (out / "results.json").write_text(json.dumps({"config": config, "results": rows}, indent=2))
    if dataset.task == "classification":
        from bayesjax.plots import reliability_diagram

        reliability_diagram(predictives, dataset.y_test, out / "reliability.png")
    return rows


def _floats(text: str) -> tuple[float, ...]:
    if text == "wenzel":
        from bayesjax.sweep import WENZEL_TEMPERATURES

        return WENZEL_TEMPERATURES
    return tuple(float(v) for v in text.split(",") if v.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def sweep(args) -> list[dict]:
    """Runs the sweep for each augmentation setting; writes tables and the figure."""
    from bayesjax import plots
    from bayesjax import sweep as sweeps

    settings = {"on": [True], "off": [False], "both": [False, True]}[args.augment]
    configs = {
        f"augmentation {'on' if augment else 'off'}": sweeps.SweepConfig(
            dataset=args.dataset, method=args.method, model=args.model, hidden=_ints(args.hidden),
            likelihood=args.likelihood, tempering=args.tempering, augment=augment,
            temperatures=args.temperatures, seeds=args.seeds, num_steps=args.steps, batch_size=args.batch_size,
            step_size=args.step_size, friction=args.friction, num_cycles=args.num_cycles, num_chains=args.chains,
            burnin=args.burnin if args.burnin is not None else args.steps // 2, thin=args.thin,
            num_predictive_samples=args.samples, prior_scale=args.prior_scale, ood=args.ood, split=args.split,
            data_root=args.data_root,
        ).validate()
        for augment in settings
    }
    results = {name: sweeps.run_sweep(config, args.out, progress=not args.quiet, cells_per_chunk=args.chunk)
               for name, config in configs.items()}
    rows = [{"setting": name, **record} for name, records in results.items() for record in records]
    sweeps.write_results(rows, next(iter(configs.values())), args.out)
    plots.sweep_curves(results, pathlib.Path(args.out) / "sweep.png")
    return [{k: r[k] for k in ("setting", "temperature", "seed", "accuracy", "nll", "ece", "brier", "ood_auroc",
                               "grad_noise_ratio", "configurational_temperature")} for r in rows]


def format_table(rows: list[dict]) -> str:
    """Rows of metrics as an aligned text table."""
    columns = list(rows[0])
    cells = [[f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayesjax", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cmp = commands.add_parser("compare", help="train and evaluate methods on one data set")
    cmp.add_argument("--dataset", default="digits")
    cmp.add_argument("--split", type=int, default=0)
    cmp.add_argument("--data-root", default=None, help="folder of on-disk data sets (UCI, fashion_mnist)")
    cmp.add_argument("--methods", type=lambda s: s.split(","), default=["map"],
                     help=f"comma-separated, from: {', '.join(sorted(METHODS))}")
    cmp.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    cmp.add_argument("--hidden", default="50,50", help="MLP hidden widths")
    cmp.add_argument("--prior-scale", type=float, default=1.0)
    cmp.add_argument("--temperature", type=float, default=1.0)
    cmp.add_argument("--steps", type=int, default=2000)
    cmp.add_argument("--batch-size", type=int, default=128)
    cmp.add_argument("--learning-rate", type=float, default=1e-3)
    cmp.add_argument("--step-size", type=float, default=1e-4, help="SG-MCMC step size")
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--out", default="results/compare")
    cmp.add_argument("--quiet", action="store_true")
    cmp.set_defaults(func=compare)

    swp = commands.add_parser("sweep", help="cold-posterior temperature x seed sweep")
    swp.add_argument("--dataset", default="digits")
    swp.add_argument("--split", type=int, default=0)
    swp.add_argument("--data-root", default=None)
    swp.add_argument("--method", default="sgld", help="sgld, sghmc or cyclical_sgld")
    swp.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    swp.add_argument("--hidden", default="50,50")
    swp.add_argument("--likelihood", default="categorical", help="categorical or noisy_dirichlet")
    swp.add_argument("--tempering", default="posterior", help="posterior or likelihood")
    swp.add_argument("--augment", choices=["on", "off", "both"], default="off")
    swp.add_argument("--temperatures", type=_floats, default="wenzel",
                     help="comma-separated, or 'wenzel' for 10^-4 ... 10^0 in 17 steps")
    swp.add_argument("--seeds", type=_ints, default="0,1")
    swp.add_argument("--steps", type=int, default=2000)
    swp.add_argument("--batch-size", type=int, default=128)
    swp.add_argument("--step-size", type=float, default=1e-4)
    swp.add_argument("--friction", type=float, default=0.05)
    swp.add_argument("--num-cycles", type=int, default=4)
    swp.add_argument("--chains", type=int, default=2, help="chains per cell")
    swp.add_argument("--burnin", type=int, default=None, help="default: half the steps")
    swp.add_argument("--thin", type=int, default=50)
    swp.add_argument("--samples", type=int, default=20, help="buffered samples per chain and predictive draws")
    swp.add_argument("--prior-scale", type=float, default=1.0)
    swp.add_argument("--ood", default="rot90", help="rot90, flip or noise")
    swp.add_argument("--chunk", type=int, default=None, help="cells per compiled call (keep it when resuming)")
    swp.add_argument("--out", default="results/sweep")
    swp.add_argument("--quiet", action="store_true")
    swp.set_defaults(func=sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from bayesjax.sharding import use_all_cpu_cores

    use_all_cpu_cores()
    _enable_compilation_cache()
    try:
        rows = args.func(args)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"bayesjax: error: {error}", file=sys.stderr)
        return 2
    print(format_table(rows))
    print(f"\nwrote {pathlib.Path(args.out) / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
