"""``run_sweep``: the grid in fixed chunks, each one compiled call, finished cells written as they come."""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import pathlib
import warnings

import jax
import jax.numpy as jnp

from bayesjax import augment, data, memory, models, sharding
from bayesjax.checks import check_int
from bayesjax.driver.posterior import DivergenceError
from bayesjax.driver.progress import bar
from bayesjax.experiments.ood import ood_inputs
from bayesjax.experiments.sweep.cells import COLUMNS, Setup, run_chunk
from bayesjax.experiments.sweep.config import METHODS, SweepConfig
from bayesjax.experiments.sweep.store import cell_path, load_cell, write_cell
from bayesjax.experiments.validation import hold_out


def chunk_size(num_cells: int, num_devices: int) -> int:
    """Cells per compiled call: a multiple of the device count, the whole grid when it fits 4 cells per device.

    Otherwise 4, 3 or 2 cells per device, whichever pads the last chunk least
    (then the larger): the last chunk is filled up with copies of its last
    cell, computed for nothing, while 2, 3 or 4 vmapped cells per device run
    at the same chain-steps per second (Fashion-MNIST MLP on the CPU,
    benchmarks/README.md). The preset grids' 51 cells on 2 devices: 13
    chunks of 4 (1 padded cell) rather than 7 of 8 (5).
    """
    if num_cells <= 4 * num_devices:
        return math.ceil(num_cells / num_devices) * num_devices
    return min((k * num_devices for k in (4, 3, 2)), key=lambda size: -(-num_cells // size) * size - num_cells)


def load(config: SweepConfig) -> tuple[data.Dataset, tuple | None]:
    """The sweep's data set and its validation split: ``(dataset, None)``, unless ``laplace_prior`` is
    ``"validation"``: then ``validation_fraction`` of the training split is held out
    (:func:`~bayesjax.experiments.validation.hold_out` by ``jax.random.key(split)``, whatever the grid) and
    the data set's training split is the rest, on which every cell trains.
    """
    dataset = data.load(config.dataset, split=config.split, root=config.data_root)
    if config.laplace_prior != "validation":
        return dataset, None
    return hold_out(dataset, config.validation_fraction, jax.random.key(config.split))


@functools.lru_cache(maxsize=16)
def setup_of(config: SweepConfig) -> Setup:
    """The static part of a sweep, cached per configuration (grid excluded) so reruns hit the same compile."""
    dataset, _ = load(config)
    small = dataset.x_train.shape[1] <= 8  # 8x8 digits; 28x28 and larger images get the research protocol's
    dropout = METHODS[config.method].dropout
    if config.model == "cnn":
        model = models.cnn(dataset.num_classes, dropout=dropout) if small else \
            models.fortuin_cnn(dataset.num_classes, dropout=dropout)
    else:
        model = models.mlp(list(config.hidden), dataset.num_classes, dropout=dropout)
    augmentation = None
    if config.augment:  # digits are not mirror-symmetric: shifts only
        augmentation = augment.random_shift(1) if small else augment.standard_image(2)
    return Setup(config, model, augmentation, len(dataset.y_train), 0)


def run_sweep(config: SweepConfig, out: str | os.PathLike, progress: bool = True,
              cells_per_chunk: int | None = None) -> list[dict]:
    """Runs (or resumes) a temperature x seed sweep and returns one record per cell.

    Args:
      config: the sweep (validated here).
      out: results folder; finished cells go to ``out/cells``.
      progress: one progress bar over the whole grid.
      cells_per_chunk: cells per compiled call. It fixes which cells share a
        call, so a resumed sweep keeps the one its finished cells record:
        ``None`` takes it (:func:`chunk_size` when no cell is finished), and
        another value is refused (see :func:`resolve_chunk`).

    Returns:
      Records ``{"temperature", "seed", metrics..., "prior_precision", diagnostics...}``
      (:data:`~bayesjax.experiments.sweep.cells.COLUMNS`) in grid order.

    Raises:
      ValueError: a bad configuration or data set, a validation split that
        leaves either part empty, or a ``cells_per_chunk`` other than that of
        the finished cells in ``out``.

    Example:
      >>> from bayesjax.experiments import sweep
      >>> config = sweep.SweepConfig(method="laplace_diag", temperatures=(1e-2, 1.0), seeds=(0, 1))
      >>> records = sweep.run_sweep(config, "results/sweep")  # doctest: +SKIP
    """
    config.validate()
    dataset, validation = load(config)
    if dataset.task != "classification":
        raise ValueError(f"sweeps are for classification; {config.dataset!r} is a {dataset.task} data set")
    if config.batch_size > len(dataset.y_train):
        raise ValueError(f"batch_size {config.batch_size} exceeds the {len(dataset.y_train)} training examples")
    out = pathlib.Path(out)
    cells = config.cells()
    devices = jax.devices()
    finished = {cell: load_cell(cell_path(out, config, *cell), config) for cell in cells}
    per_chunk = resolve_chunk(cells_per_chunk, {r["cells_per_chunk"] for r in finished.values() if r is not None},
                              chunk_size(len(cells), len(devices)), out)
    chunks = [cells[i:i + per_chunk] for i in range(0, len(cells), per_chunk)]
    pending = [chunk for chunk in chunks if any(finished[cell] is None for cell in chunk)]

    if pending:
        setup = setup_of(dataclasses.replace(config, temperatures=(), seeds=()))
        setup = setup._replace(progress_every=max(1, config.num_steps // 100) if progress else 0,
                               memory_budget=memory.DEFAULT_BUDGET // max(1, per_chunk // len(devices)))
        x_ood = ood_inputs(dataset.x_test, config.ood)
        mesh = sharding.mesh(chains=math.gcd(per_chunk, len(devices)))
        place = functools.partial(jax.device_put, device=sharding.chain_sharding(mesh))
        with bar(progress, len(pending) * config.num_steps, f"sweep {len(cells)} cells") as progress_bar:
            for done, chunk in enumerate(pending):
                progress_bar.offset = done * config.num_steps
                padded = chunk + [chunk[-1]] * (per_chunk - len(chunk))
                temperatures = place(jnp.asarray([t for t, _ in padded]))
                seeds = place(jnp.asarray([s for _, s in padded], jnp.uint32))
                values = jax.device_get(run_chunk(setup, temperatures, seeds, dataset.x_train, dataset.y_train,
                                                  dataset.x_test, dataset.y_test, x_ood, progress_bar.id,
                                                  validation))
                written = []
                for i, (t, s) in enumerate(chunk):
                    record = {"fingerprint": config.fingerprint(), "cells_per_chunk": per_chunk, "temperature": t,
                              "seed": s}
                    record.update({name: float(values[name][i]) for name in COLUMNS})
                    write_cell(cell_path(out, config, t, s), record)
                    written.append(record)
                _stop_if_diverged(written, config, out)

    records = [load_cell(cell_path(out, config, t, s), config) for t, s in cells]
    _warn(records, config)
    return [{k: v for k, v in r.items() if k not in ("checksum", "fingerprint", "cells_per_chunk")} for r in records]


def resolve_chunk(requested: int | None, stored: set[int], default: int, out: pathlib.Path) -> int:
    """Cells per compiled call: ``requested``, else that of the finished cells (``stored``), else ``default``.

    A chunk's cells are computed together (one vmap, one memory budget), so
    their last float bits depend on the chunking: a resumed sweep ends with
    the numbers of an uninterrupted one only in the chunks of the first run.
    ``None`` takes the stored chunking; another explicit value is refused.

    Raises:
      ValueError: ``requested`` is not a positive integer, or differs from the
        stored chunking (or the finished cells disagree among themselves).
    """
    if requested is not None:
        check_int("cells_per_chunk", requested)
    chosen = requested or (min(stored) if stored else default)
    if stored - {chosen}:
        raise ValueError(f"the finished cells of this sweep in {out / 'cells'} were computed {sorted(stored)} per "
                         f"compiled call, not {chosen}: resume with --chunk {min(stored)} (cells_per_chunk={min(stored)}) "
                         f"or without it, which takes it, or start afresh in another --out")
    return chosen


def _stop_if_diverged(records: list[dict], config: SweepConfig, out: pathlib.Path) -> None:
    """Raises :class:`~bayesjax.DivergenceError` naming the diverged cells of a chunk, their step and a setting to try.

    The chunk's cells are written first (the diverged ones with NaN metrics),
    so a rerun with the same configuration resumes after them; a smaller step
    size is another configuration and runs every cell afresh.
    """
    diverged = [r for r in records if r["diverged_chains"] > 0]
    if not diverged:
        return
    chains = METHODS[config.method].kind == "chains"
    cells = "; ".join(
        f"T={r['temperature']:.3g} seed {r['seed']}: {int(r['diverged_chains'])} "
        + (f"chain(s) from step {int(r['diverged_at'])}" if chains else "fit(s) not finite")
        for r in diverged)
    retry = (f"--step-size {config.step_size / 4:.3g} (now {config.step_size:.3g}, a learning rate per example)"
             if chains else f"--learning-rate {config.learning_rate / 4:.3g} (now {config.learning_rate:.3g})")
    raise DivergenceError(f"the sweep stopped: {len(diverged)} cell(s) diverged ({cells}). Their metrics are "
                          f"NaN in {out / 'cells'}. Try {retry}.")


def _warn(records: list[dict], config: SweepConfig) -> None:
    """Warns where the SG-MCMC chains of a cell did not sample its nominal temperature, and about diverged cells."""
    if METHODS[config.method].kind == "chains":
        unmet = [r for r in records if r["diverged_chains"] == 0 and (
            r["grad_noise_ratio"] > 0.25 or not 0.5 < r["configurational_temperature"] / r["temperature"] < 2)]
        if unmet:
            cells = ", ".join(f"T={r['temperature']:.3g} (seed {r['seed']}: noise ratio "
                              f"{r['grad_noise_ratio']:.2g}, T_conf {r['configurational_temperature']:.3g})"
                              for r in unmet[:6])
            more = f" and {len(unmet) - 6} more" if len(unmet) > 6 else ""
            warnings.warn(f"nominal temperature not met in {len(unmet)} cell(s): {cells}{more}. Minibatch "
                          "gradient noise or too few steps: lower the step size or raise the batch size.",
                          stacklevel=3)
    diverged = [r for r in records if r["diverged_chains"] > 0]
    if diverged:
        warnings.warn(f"{len(diverged)} cell(s) had diverged chains or fits (their metrics are NaN): "
                      + ", ".join(f"T={r['temperature']:.3g} seed {r['seed']}" for r in diverged[:6]), stacklevel=3)
