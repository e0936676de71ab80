"""The ``bayesjax`` command.

``bayesjax compare --dataset digits`` trains every inference method on the
same data, evaluates its Bayesian model average on the test split and writes
``results.json``, ``results.csv`` and reliability diagrams (1-D regression:
``bands.png``) into ``--out`` (see :mod:`bayesjax.experiments.compare`).

``bayesjax sweep --dataset digits --method sgld`` runs a cold-posterior
temperature x seed sweep (resumable) and writes ``results.json``,
``results.csv`` and ``sweep.png`` into ``--out``.

On the CPU the command splits the host into one device per core and turns on
JAX's persistent compilation cache.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys


def _enable_compilation_cache() -> None:
    """Persistent XLA cache: a warm compile loads the program instead of compiling it.

    ``$BAYESJAX_CACHE`` names its folder (default ``~/.cache/bayesjax/xla``);
    set to the empty string, it turns the cache off.
    """
    import jax

    cache = os.environ.get("BAYESJAX_CACHE", os.path.join(pathlib.Path.home(), ".cache", "bayesjax", "xla"))
    if not cache:
        return
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)


def compare_command(args) -> list[dict]:
    """Runs the comparison of :mod:`bayesjax.experiments.compare` with the command's settings."""
    from bayesjax.experiments import compare

    config = compare.CompareConfig(
        dataset=args.dataset, methods=args.methods, model=args.model, hidden=_ints(args.hidden),
        prior_scale=args.prior_scale, temperature=args.temperature, noise_std=args.noise_std,
        batch_size=args.batch_size, learning_rate=args.learning_rate, step_size=args.step_size, steps=args.steps,
        members=args.members, samples=args.samples, laplace_predictive=args.laplace_predictive, ood=args.ood,
        hmc_max_params=args.hmc_max_params, seed=args.seed, split=args.split, data_root=args.data_root,
    )
    return compare.run_compare(config, args.out, progress=not args.quiet)


def _floats(text: str) -> tuple[float, ...]:
    if text == "wenzel":
        from bayesjax.experiments.sweep import WENZEL_TEMPERATURES

        return WENZEL_TEMPERATURES
    return tuple(float(v) for v in text.split(",") if v.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def sweep_command(args) -> list[dict]:
    """Runs the sweep for each augmentation setting; writes tables and the figure."""
    from bayesjax.experiments import plots, sweep

    settings = {"on": [True], "off": [False], "both": [False, True]}[args.augment]
    configs = {
        f"augmentation {'on' if augment else 'off'}": sweep.SweepConfig(
            dataset=args.dataset, method=args.method, model=args.model, hidden=_ints(args.hidden),
            likelihood=args.likelihood, tempering=args.tempering, augment=augment,
            temperatures=args.temperatures, seeds=args.seeds, num_steps=args.steps, batch_size=args.batch_size,
            step_size=args.step_size, friction=args.friction, num_cycles=args.num_cycles,
            epochs_per_cycle=args.epochs_per_cycle, layerwise_preconditioner=args.layerwise_preconditioner, num_chains=args.chains, prior=args.prior,
            burnin=args.burnin if args.burnin is not None else args.steps // 2, thin=args.thin,
            num_predictive_samples=args.samples, prior_scale=args.prior_scale, ood=args.ood, split=args.split,
            data_root=args.data_root, learning_rate=args.learning_rate, laplace_predictive=args.laplace_predictive,
        ).validate()
        for augment in settings
    }
    results = {name: sweep.run_sweep(config, args.out, progress=not args.quiet, cells_per_chunk=args.chunk)
               for name, config in configs.items()}
    rows = [{"setting": name, **record} for name, records in results.items() for record in records]
    sweep.write_results(rows, next(iter(configs.values())), args.out)
    plots.sweep_curves(results, pathlib.Path(args.out) / "sweep.png")
    return [{k: r[k] for k in ("setting", "temperature", "seed", "accuracy", "nll", "ece", "brier", "ood_auroc",
                               "grad_noise_ratio", "configurational_temperature")} for r in rows]


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def format_table(rows: list[dict]) -> str:
    """Rows of metrics as an aligned text table (``None`` as ``-``)."""
    columns = list(rows[0])
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def _preset_defaults(argv: list[str] | None) -> dict:
    """The flag defaults of ``--preset NAME`` when ``argv`` names one (else none)."""
    from bayesjax.experiments.sweep.presets import PRESETS

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", choices=sorted(PRESETS), default=None)
    known, _ = pre.parse_known_args(argv)
    return {} if known.preset is None else PRESETS[known.preset]


def _parser(sweep_defaults: dict | None = None) -> argparse.ArgumentParser:
    from bayesjax.experiments.compare.config import HMC_MAX_PARAMS
    from bayesjax.experiments.recipes import describe_methods
    from bayesjax.experiments.sweep.presets import PRESETS

    parser = argparse.ArgumentParser(prog="bayesjax", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cmp = commands.add_parser(
        "compare", help="train and evaluate every method on one data set",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Trains each method on the training split and evaluates its Bayesian model average on the "
                    "test split.\ntrain_seconds and predict_seconds exclude JAX compilation (compile_seconds). "
                    "HMC, the reference for\nagreement / total variation, runs when the model has at most "
                    "--hmc-max-params weights.",
        epilog=f"methods and default budgets (--steps / --members / --samples replace them for every method):\n"
               f"{describe_methods()}",
    )
    cmp.add_argument("--dataset", default="digits", help="any bj.data name; 1-D regression (gap) draws bands.png")
    cmp.add_argument("--split", type=int, default=0)
    cmp.add_argument("--data-root", default=None, help="folder of on-disk data sets (UCI, fashion_mnist)")
    cmp.add_argument("--methods", type=_names, default=None, help="comma-separated (default: all, see below)")
    cmp.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    cmp.add_argument("--hidden", default="50,50", help="MLP hidden widths")
    cmp.add_argument("--prior-scale", type=float, default=1.0)
    cmp.add_argument("--temperature", type=float, default=1.0)
    cmp.add_argument("--noise-std", type=float, default=0.15,
                     help="regression observation noise, in standardized target units")
    cmp.add_argument("--batch-size", type=int, default=128)
    cmp.add_argument("--learning-rate", type=float, default=1e-3, help="Adam (MAP, ensembles, VI)")
    cmp.add_argument("--step-size", type=float, default=None,
                     help="SG-MCMC learning rate per example, on the gradient of the mean loss "
                          "(default: 0.15, times noise_std^2 in regression)")
    cmp.add_argument("--steps", type=int, default=None, help="steps of every method (default: per method)")
    cmp.add_argument("--members", type=int, default=None, help="members / chains of every method")
    cmp.add_argument("--samples", type=int, default=None, help="predictive draws of every method")
    cmp.add_argument("--laplace-predictive", choices=["glm", "mc"], default="glm",
                     help="Laplace: linearized (probit) or Monte Carlo weight-space predictive")
    cmp.add_argument("--ood", default=None, help="rot90, flip or noise (default: rot90 for images, else noise)")
    cmp.add_argument("--hmc-max-params", type=int, default=HMC_MAX_PARAMS,
                     help="largest model (weights) for the HMC reference")
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--out", default="results/compare")
    cmp.add_argument("--quiet", action="store_true")
    cmp.set_defaults(func=compare_command)

    swp = commands.add_parser("sweep", help="cold-posterior temperature x seed sweep")
    swp.add_argument("--preset", choices=sorted(PRESETS), default=None,
                     help="the research protocol's settings (see bayesjax.experiments.sweep.presets); "
                          "flags given with it override them")
    swp.add_argument("--dataset", default="digits")
    swp.add_argument("--split", type=int, default=0)
    swp.add_argument("--data-root", default=None)
    swp.add_argument("--method", default="sgld", help="a name in bayesjax.experiments.sweep.METHODS: sgld, sghmc, "
                     "cyclical_sgld, cyclical_sghmc, meanfield_vi, laplace_diag, laplace_kfac, laplace_last_layer")
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
    swp.add_argument("--step-size", type=float, default=0.1,
                     help="SG-MCMC learning rate per example: it multiplies the gradient of the mean loss "
                          "(the Langevin step is it / N), so one value serves every data set size")
    swp.add_argument("--friction", type=float, default=0.05)
    swp.add_argument("--num-cycles", type=int, default=4)
    swp.add_argument("--layerwise-preconditioner", action=argparse.BooleanOptionalAction, default=False,
                     help="SGHMC: Wenzel et al. (2020)'s layerwise preconditioner, refreshed every epoch")
    swp.add_argument("--epochs-per-cycle", type=int, default=None,
                     help="cyclical methods: cycles of this many epochs, one draw at the end of each "
                          "(replaces --burnin and --thin)")
    swp.add_argument("--chains", type=int, default=2, help="chains per cell")
    swp.add_argument("--burnin", type=int, default=None, help="default: half the steps")
    swp.add_argument("--thin", type=int, default=50)
    swp.add_argument("--samples", type=int, default=20, help="buffered samples per chain and predictive draws")
    swp.add_argument("--prior", choices=["isotropic", "gaussian", "laplace", "student_t"], default="isotropic",
                     help="isotropic N(0, prior_scale^2), or He-scaled per layer (Fortuin et al. 2021)")
    swp.add_argument("--prior-scale", type=float, default=1.0)
    swp.add_argument("--learning-rate", type=float, default=1e-3, help="Adam (VI, and the MAP under Laplace)")
    swp.add_argument("--laplace-predictive", choices=["glm", "mc"], default="glm")
    swp.add_argument("--ood", default="rot90", help="rot90, flip or noise")
    swp.add_argument("--chunk", type=int, default=None, help="cells per compiled call (keep it when resuming)")
    swp.add_argument("--out", default="results/sweep")
    swp.add_argument("--quiet", action="store_true")
    swp.set_defaults(func=sweep_command, **(sweep_defaults or {}))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser(_preset_defaults(argv)).parse_args(argv)
    from bayesjax.sharding import use_all_cpu_cores

    use_all_cpu_cores()
    _enable_compilation_cache()
    from bayesjax.driver.posterior import DivergenceError

    try:
        rows = args.func(args)
    except (ValueError, FileNotFoundError, ImportError, DivergenceError) as error:
        print(f"bayesjax: error: {error}", file=sys.stderr)
        return 2
    print(format_table(rows))
    print(f"\nwrote {pathlib.Path(args.out) / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
