"""Temperature x seed sweeps of the cold-posterior effect, compiled once and resumable.

A sweep runs one inference method (:data:`METHODS`: the SG-MCMC, mean-field
VI and Laplace recipes of :mod:`bayesjax.experiments.recipes`) on a grid of
temperatures T and seeds (default: T = 10^x for x = -4, -3.75, ..., 0, the
17-point grid of Wenzel et al. 2020). Temperature
and seed are traced values, so every cell of the grid runs in one ``vmap`` of
the whole run (training, post-hoc fit, sampling, predictive, metrics) inside
one ``jit``, its cell axis sharded over the devices present.

The grid is cut into fixed chunks; each chunk's cells are written atomically
(strict JSON with a checksum) as soon as the chunk finishes, under a name that
carries a hash of the configuration. Rerunning the same command skips finished
cells; a corrupted or partial file is recomputed; a changed configuration never
reuses old cells. Each cell records its chunk size and a resumed sweep keeps it
(another one is refused), so a chunk always holds the same cells and a resumed
sweep ends with the numbers of an uninterrupted one. :func:`write_results`
writes ``results.json`` and ``results.csv`` (:mod:`bayesjax.experiments.outputs`).

Each SG-MCMC cell also reports whether its nominal temperature was really
sampled (Wenzel et al. 2020, Sec. 4): the ratio of minibatch-gradient noise to
injected noise, and configurational / kinetic temperature estimates
(:mod:`.temperature`); for VI and Laplace they are NaN.

Each Laplace cell records the prior precision it used (``prior_precision``;
NaN for the other methods): the prior's own by default, or, with
``laplace_prior``, the Laplace evidence's maximum or the grid value of least
validation NLL at the cell's temperature, on ``validation_fraction`` of the
training split held out (:mod:`bayesjax.experiments.validation`; every cell
then trains on the rest).

One concept per file: :mod:`.config` (what defines the numbers, the methods
a sweep runs), :mod:`.methods` (how a cell runs a method with a traced
temperature), :mod:`.temperature` (honest-temperature checks), :mod:`.cells`
(one cell, one chunk), :mod:`.store` (cell files), :mod:`.driver`
(:func:`run_sweep`). Out-of-distribution inputs come from
:mod:`bayesjax.experiments.ood`.

Example:
  >>> from bayesjax.experiments import sweep
  >>> config = sweep.SweepConfig(method="meanfield_vi", temperatures=(1e-3, 1e-1, 1.0), seeds=(0, 1))
  >>> records = sweep.run_sweep(config, "results/sweep")  # doctest: +SKIP
"""
from bayesjax.experiments.ood import OOD_SHIFTS, ood_inputs
from bayesjax.experiments.sweep.cells import COLUMNS, DIAGNOSTICS, METRICS, evaluate, run_chunk
from bayesjax.experiments.sweep.config import (
    LAPLACE_PREDICTIVES,
    LIKELIHOODS,
    METHODS,
    WENZEL_TEMPERATURES,
    SweepConfig,
)
from bayesjax.experiments.sweep.driver import chunk_size, run_sweep
from bayesjax.experiments.sweep.store import load_cell, write_results
from bayesjax.experiments.sweep.temperature import (
    configurational_temperature,
    gradient_noise_ratio,
    kinetic_temperature,
    momentum_step_size,
)

__all__ = [
    "COLUMNS",
    "DIAGNOSTICS",
    "LAPLACE_PREDICTIVES",
    "LIKELIHOODS",
    "METHODS",
    "METRICS",
    "OOD_SHIFTS",
    "WENZEL_TEMPERATURES",
    "SweepConfig",
    "chunk_size",
    "configurational_temperature",
    "evaluate",
    "gradient_noise_ratio",
    "kinetic_temperature",
    "load_cell",
    "momentum_step_size",
    "ood_inputs",
    "run_chunk",
    "run_sweep",
    "write_results",
]
