"""The ``bayesjax`` command.

``bayesjax compare --dataset digits`` trains every inference method on the
same data, evaluates its Bayesian model average on the test split and writes
``results.json``, ``results.csv`` and reliability diagrams (1-D regression:
``bands.png``) into ``--out`` (see :mod:`bayesjax.experiments.compare`).

``bayesjax sweep --dataset digits --method sgld`` runs a cold-posterior
temperature x seed sweep (resumable) and writes ``results.json``,
``results.csv`` and ``sweep.png`` into ``--out``.

``bayesjax plot gaussian=results/a student_t=results/b --out priors.png``
overlays finished sweeps (:mod:`bayesjax.experiments.sweep.overlay`): their
curves in one figure, and a table of the means over seeds.

Both files are strict (:mod:`bayesjax.experiments.outputs`: JSON with
``null`` for NaN, CSV with plain values) and record the bayesjax and jax
versions, the git commit and a hash of the configuration. Every flag's value
is checked by its argparse type before anything runs: a bad one exits with
status 2 and ``argument --flag: ...``. ``--help`` shows each flag's default.

On the CPU the command splits the host into one device per core and turns on
JAX's persistent compilation cache.

The file is one concept, the command line: each subcommand's flags with
their argparse checks, and the dispatch to the experiments.
"""
from __future__ import annotations

import argparse
import math
import os
import pathlib
import sys
from typing import Callable


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


def integer(minimum: int = 1, below: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer ``>= minimum`` (and ``< below`` when given)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum or (below is not None and value >= below):
            bound = f">= {minimum}" if below is None else f"in [{minimum}, {below})"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {value}")
        return value

    return parse


SEED = integer(0, below=2**32)
"""A PRNG seed: JAX keys and the sweep's cells take 32-bit seeds (a larger one would be cut)."""


def positive(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be finite and > 0, got {text}")
    return value


def fraction(text: str) -> float:
    """An argparse type: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def one_of(names, what: str) -> Callable[[str], str]:
    """An argparse type for list entries: one of ``names``."""
    def parse(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r}; choose from {', '.join(names)}")
        return text

    return parse


def listed(item: Callable[[str], object], unique: bool = True, aliases: dict | None = None) -> Callable[[str], tuple]:
    """An argparse type: a non-empty comma-separated list, each entry parsed by ``item``.

    An empty entry (``1,,2``) is refused, and so are repeats when ``unique``;
    ``aliases`` maps whole names (``wenzel``) to ready lists.
    """
    def parse(text: str) -> tuple:
        if aliases and text in aliases:
            return tuple(aliases[text])
        entries = [entry.strip() for entry in text.split(",")]
        if entries == [""]:
            raise argparse.ArgumentTypeError("empty list: give at least one value")
        if "" in entries:
            raise argparse.ArgumentTypeError(f"empty entry in {text!r}")
        values = tuple(item(entry) for entry in entries)
        if unique and len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"repeated entries in {text!r}")
        return values

    return parse


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Appends each flag's default to its help; a flag whose default is ``None`` says in words what it means."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return action.help if action.default is None else super()._get_help_string(action)


def compare_command(args) -> list[dict]:
    """Runs the comparison of :mod:`bayesjax.experiments.compare` with the command's settings."""
    from bayesjax.experiments import compare

    config = compare.CompareConfig(
        dataset=args.dataset, methods=args.methods, model=args.model, hidden=args.hidden,
        prior_scale=args.prior_scale, temperature=args.temperature, noise_std=args.noise_std,
        batch_size=args.batch_size, learning_rate=args.learning_rate, step_size=args.step_size, steps=args.steps,
        members=args.members, samples=args.samples, laplace_predictive=args.laplace_predictive, ood=args.ood,
        laplace_prior=args.laplace_prior, validation_fraction=args.validation_fraction, hmc_max_params=args.hmc_max_params, seed=args.seed, split=args.split, data_root=args.data_root,
    )
    return compare.run_compare(config, args.out, progress=not args.quiet)


def sweep_command(args) -> list[dict]:
    """Runs the sweep for each augmentation setting; writes tables and the figure.

    Returns the printed table's rows: the metrics (NaN in a cell where a
    chain or fit diverged, as in the files), the Laplace prior precision used
    (NaN for the other methods), two honest-temperature checks and the
    diverged chains.
    """
    from bayesjax.experiments import plots, sweep

    settings = {"on": [True], "off": [False], "both": [False, True]}[args.augment]
    configs = {
        f"augmentation {'on' if augment else 'off'}": sweep.SweepConfig(
            dataset=args.dataset, method=args.method, model=args.model, hidden=args.hidden,
            likelihood=args.likelihood, tempering=args.tempering, augment=augment,
            temperatures=args.temperatures, seeds=args.seeds, num_steps=args.steps, batch_size=args.batch_size,
            step_size=args.step_size, friction=args.friction, num_cycles=args.num_cycles,
            epochs_per_cycle=args.epochs_per_cycle, layerwise_preconditioner=args.layerwise_preconditioner,
            num_chains=args.chains, prior=args.prior,
            burnin=args.burnin if args.burnin is not None else args.steps // 2, thin=args.thin,
            num_predictive_samples=args.samples, prior_scale=args.prior_scale, ood=args.ood, split=args.split,
            data_root=args.data_root, learning_rate=args.learning_rate, laplace_predictive=args.laplace_predictive,
            laplace_prior=args.laplace_prior, validation_fraction=args.validation_fraction,
        ).validate()
        for augment in settings
    }
    results = {name: sweep.run_sweep(config, args.out, progress=not args.quiet, cells_per_chunk=args.chunk)
               for name, config in configs.items()}
    rows = [{"setting": name, **record} for name, records in results.items() for record in records]
    sweep.write_results(rows, configs, args.out)
    plots.sweep_curves(results, pathlib.Path(args.out) / "sweep.png")
    columns = ("setting", "temperature", "seed", *sweep.METRICS, "prior_precision", "grad_noise_ratio",
               "configurational_temperature", "diverged_chains")
    return [{k: r[k] for k in columns} for r in rows]


def plot_command(args) -> list[dict]:
    """Overlays finished sweeps in one figure (``--out``); returns the means over seeds per curve and temperature."""
    from bayesjax.experiments.sweep.overlay import overlay

    return overlay(args.sweeps, args.out, args.metrics, args.setting)


def labelled_folder(text: str) -> tuple[str, str]:
    """``LABEL=FOLDER`` (or ``FOLDER``, labelled by its name) of ``bayesjax plot``."""
    label, _, folder = text.rpartition("=")
    if not folder:
        raise argparse.ArgumentTypeError(f"expected LABEL=FOLDER or FOLDER, got {text!r}")
    return label or pathlib.Path(folder).name, folder


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_table(rows: list[dict]) -> str:
    """Rows of metrics as an aligned text table (floats to 4 significant digits, NaN as ``nan``, ``None`` as ``-``)."""
    columns = list(rows[0])
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def _preset_defaults(argv: list[str] | None) -> dict:
    """The flag defaults of ``--preset NAME`` when ``argv`` names one (an unknown name: none, the parser refuses it)."""
    from bayesjax.experiments.sweep.presets import PRESETS

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", default=None)
    known, _ = pre.parse_known_args(argv)
    return PRESETS.get(known.preset, {})


def _compare_parser(commands) -> None:
    from bayesjax.experiments.compare.config import HMC_MAX_PARAMS
    from bayesjax.experiments.ood import OOD_SHIFTS
    from bayesjax.experiments.recipes import METHODS, describe_methods
    from bayesjax.experiments.validation import LAPLACE_PRIORS, VALIDATION_FRACTION

    cmp = commands.add_parser(
        "compare", help="train and evaluate every method on one data set", formatter_class=HelpFormatter,
        description="Trains each method on the training split and evaluates its Bayesian model average on the "
                    "test split.\ntrain_seconds and predict_seconds exclude JAX compilation (compile_seconds). "
                    "HMC, the reference for\nagreement / total variation, runs when the model has at most "
                    "--hmc-max-params weights.",
        epilog=f"methods and default budgets (--steps / --members / --samples replace them for every method):\n"
               f"{describe_methods()}",
    )
    data = cmp.add_argument_group("data")
    data.add_argument("--dataset", default="digits",
                      help="any bj.data name; a 1-D regression set (gap) also draws bands.png")
    data.add_argument("--split", type=integer(0), default=0,
                      help="which train/test split: its random seed, or a UCI split's index")
    data.add_argument("--data-root", default=None,
                      help="folder of the on-disk data sets, UCI and fashion_mnist (default: their standard places)")
    data.add_argument("--ood", choices=OOD_SHIFTS, default=None,
                      help="shift of the test inputs for OOD detection (default: rot90 for images, else noise)")
    model = cmp.add_argument_group("model")
    model.add_argument("--model", choices=["mlp", "cnn"], default="mlp", help="network")
    model.add_argument("--hidden", type=listed(integer(1), unique=False), default="50,50", metavar="W,W,...",
                       help="comma-separated widths of the MLP's hidden layers")
    model.add_argument("--prior-scale", type=positive, default=1.0, help="standard deviation of the N(0, s^2) prior")
    model.add_argument("--temperature", type=positive, default=1.0, help="posterior temperature T")
    model.add_argument("--noise-std", type=positive, default=0.15,
                       help="regression observation noise, in standardized target units")
    method = cmp.add_argument_group("method")
    method.add_argument("--methods", type=listed(one_of(list(METHODS), "method")), default=None, metavar="M,M,...",
                        help="comma-separated methods to run (default: every method the model allows, see below)")
    method.add_argument("--batch-size", type=integer(1), default=128, help="minibatch size")
    method.add_argument("--learning-rate", type=positive, default=1e-3, help="Adam's (MAP, ensembles, VI)")
    method.add_argument("--step-size", type=positive, default=None,
                        help="SG-MCMC learning rate per example, on the gradient of the mean loss "
                             "(default: 0.15, times noise_std^2 in regression)")
    method.add_argument("--steps", type=integer(2), default=None, help="steps of every method (default: per method)")
    method.add_argument("--members", type=integer(1), default=None,
                        help="ensemble members or chains of every method (default: per method)")
    method.add_argument("--samples", type=integer(1), default=None,
                        help="predictive draws of every method (default: per method)")
    method.add_argument("--laplace-predictive", choices=["glm", "mc"], default="glm",
                        help="Laplace: linearized (probit) or Monte Carlo weight-space predictive")
    method.add_argument("--laplace-prior", choices=LAPLACE_PRIORS, default=None,
                        help="Laplace prior precision: the prior's own, the evidence's maximum, or the grid value of "
                             "least validation NLL (default: validation, untuned without a validation split)")
    method.add_argument("--validation-fraction", type=fraction, default=VALIDATION_FRACTION,
                        help="share of the training split held out to tune Laplace priors and calibrate every "
                             "predictive (0: none)")
    method.add_argument("--hmc-max-params", type=integer(1), default=HMC_MAX_PARAMS,
                        help="largest model (weights) for the HMC reference")
    method.add_argument("--seed", type=SEED, default=0, help="seed of the initialization and of every method's keys")
    output = cmp.add_argument_group("output")
    output.add_argument("--out", default="results/compare", help="folder of the tables and figures")
    output.add_argument("--quiet", action="store_true", help="no progress lines")
    cmp.set_defaults(func=compare_command)


def _sweep_parser(commands, defaults: dict) -> None:
    from bayesjax.experiments.ood import OOD_SHIFTS
    from bayesjax.experiments.sweep.config import LAPLACE_PREDICTIVES, LIKELIHOODS, METHODS, PRIORS, WENZEL_TEMPERATURES
    from bayesjax.experiments.sweep.presets import PRESETS
    from bayesjax.experiments.validation import LAPLACE_PRIORS, VALIDATION_FRACTION
    from bayesjax.logjoint import TEMPERINGS

    swp = commands.add_parser("sweep", help="cold-posterior temperature x seed sweep", formatter_class=HelpFormatter,
                              description="Runs one method on a grid of temperatures x seeds, one compiled call "
                                          "per chunk of cells; rerunning the command resumes it.")
    swp.add_argument("--preset", choices=sorted(PRESETS), default=None,
                     help="the research protocol's settings (see bayesjax.experiments.sweep.presets); "
                          "flags given with it override them (default: none)")
    data = swp.add_argument_group("data")
    data.add_argument("--dataset", default="digits", help="a bj.data classification set")
    data.add_argument("--split", type=integer(0), default=0,
                      help="which train/test split: its random seed, or a UCI split's index")
    data.add_argument("--data-root", default=None,
                      help="folder of the on-disk data sets, fashion_mnist (default: their standard places)")
    data.add_argument("--augment", choices=["on", "off", "both"], default="off",
                      help="training-data augmentation (both: one sweep without, one with)")
    data.add_argument("--ood", choices=OOD_SHIFTS, default="rot90", help="shift of the test inputs for OOD AUROC")
    model = swp.add_argument_group("model")
    model.add_argument("--model", choices=["mlp", "cnn"], default="mlp", help="network")
    model.add_argument("--hidden", type=listed(integer(1), unique=False), default="50,50", metavar="W,W,...",
                       help="comma-separated widths of the MLP's hidden layers")
    model.add_argument("--prior", choices=PRIORS, default="isotropic",
                       help="isotropic N(0, prior_scale^2), or He-scaled per layer (Fortuin et al. 2021)")
    model.add_argument("--prior-scale", type=positive, default=1.0, help="the prior's scale")
    model.add_argument("--likelihood", choices=sorted(LIKELIHOODS), default="categorical", help="observation model")
    model.add_argument("--tempering", choices=TEMPERINGS, default="posterior",
                       help="what T divides: likelihood and prior (posterior), or the likelihood only")
    method = swp.add_argument_group("method")
    method.add_argument("--method", choices=sorted(METHODS), default="sgld", help="inference method")
    method.add_argument("--steps", type=integer(1), default=2000, help="training steps per chain or fit")
    method.add_argument("--batch-size", type=integer(1), default=128, help="minibatch size")
    method.add_argument("--step-size", type=positive, default=0.1,
                        help="SG-MCMC learning rate per example: it multiplies the gradient of the mean loss "
                             "(the Langevin step is it / N), so one value serves every data set size")
    method.add_argument("--friction", type=positive, default=0.05, help="SGHMC's friction")
    method.add_argument("--num-cycles", type=integer(1), default=4, help="cyclical methods: cycles per run")
    method.add_argument("--epochs-per-cycle", type=integer(1), default=None,
                        help="cyclical methods: cycles of this many epochs, one draw at the end of each, replacing "
                             "--num-cycles, --burnin and --thin (default: --num-cycles per run)")
    method.add_argument("--layerwise-preconditioner", action=argparse.BooleanOptionalAction, default=False,
                        help="SGHMC: Wenzel et al. (2020)'s layerwise preconditioner, refreshed every epoch")
    method.add_argument("--chains", type=integer(1), default=2, help="SG-MCMC chains per cell")
    method.add_argument("--burnin", type=integer(0), default=None,
                        help="SG-MCMC steps before the first kept sample (default: half of --steps)")
    method.add_argument("--thin", type=integer(1), default=50, help="SG-MCMC steps between kept samples")
    method.add_argument("--samples", type=integer(1), default=20,
                        help="buffered samples per chain, and predictive draws")
    method.add_argument("--learning-rate", type=positive, default=1e-3, help="Adam's (VI, and the MAP under Laplace)")
    method.add_argument("--laplace-predictive", choices=LAPLACE_PREDICTIVES, default="glm",
                        help="Laplace: linearized (probit) or Monte Carlo weight-space predictive")
    method.add_argument("--laplace-prior", choices=LAPLACE_PRIORS, default="untuned",
                        help="Laplace prior precision, per cell: the prior's own, the evidence's maximum, or the "
                             "grid value of least validation NLL (the prior_precision column)")
    method.add_argument("--validation-fraction", type=fraction, default=VALIDATION_FRACTION,
                        help="--laplace-prior validation: share of the training split held out (every cell trains "
                             "on the rest)")
    grid = swp.add_argument_group("grid")
    grid.add_argument("--temperatures", type=listed(positive, aliases={"wenzel": WENZEL_TEMPERATURES}),
                      default="wenzel", metavar="T,T,...",
                      help="comma-separated temperatures, or wenzel for the 17 values 10^-4, 10^-3.75, ..., 1 "
                           "of Wenzel et al. (2020)")
    grid.add_argument("--seeds", type=listed(SEED), default="0,1", metavar="S,S,...",
                      help="comma-separated seeds in [0, 2^32)")
    grid.add_argument("--chunk", type=integer(1), default=None,
                      help="cells per compiled call (default: about 4 per device; a resumed sweep takes the chunk "
                           "its finished cells record, and refuses another)")
    output = swp.add_argument_group("output")
    output.add_argument("--out", default="results/sweep", help="folder of the cells, tables and figure")
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    swp.set_defaults(func=sweep_command, **defaults)


def _plot_parser(commands) -> None:
    from bayesjax.experiments.sweep.cells import METRICS

    plot = commands.add_parser("plot", help="overlay finished sweeps in one figure", formatter_class=HelpFormatter,
                               description="Reads the results.json of finished sweeps and draws their metrics "
                                           "against T in one figure; prints the means over seeds.")
    plot.add_argument("sweeps", nargs="+", type=labelled_folder, metavar="LABEL=FOLDER",
                      help="a sweep's --out folder, with the label of its curves (default: the folder's name)")
    plot.add_argument("--out", required=True, help="the figure's path (e.g. priors.png)")
    plot.add_argument("--metrics", type=listed(one_of(METRICS, "metric")), default=("accuracy", "nll", "ece"),
                      help="metrics to draw, one panel each")
    plot.add_argument("--setting", default=None,
                      help="draw only this setting of each sweep (e.g. 'augmentation off'; default: all)")
    plot.set_defaults(func=plot_command, written=lambda args: pathlib.Path(args.out))


def _parser(sweep_defaults: dict | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayesjax", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _compare_parser(commands)
    _sweep_parser(commands, sweep_defaults or {})
    _plot_parser(commands)
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
    written = args.written(args) if hasattr(args, "written") else pathlib.Path(args.out) / "results.json"
    print(f"\nwrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
