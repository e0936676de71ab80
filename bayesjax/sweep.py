"""Temperature x seed sweeps of the cold-posterior effect, compiled once and resumable.

A sweep runs one inference method on a grid of temperatures T and seeds
(default: T = 10^x for x = -4, -3.75, ..., 0, the 17-point grid of Wenzel et al.
2020). Temperature and seed are traced values, so every cell of the grid runs
in one ``vmap`` of the whole run (training, sampling, predictive, metrics)
inside one ``jit``, its cell axis sharded over the devices present.

The grid is cut into fixed chunks; each chunk's cells are written atomically
(with a checksum) as soon as the chunk finishes, under a name that carries a
hash of the configuration. Rerunning the same command skips finished cells;
a corrupted or partial file is recomputed; a changed configuration never reuses
old cells. A chunk always holds the same cells, so a resumed sweep ends with
the numbers of an uninterrupted one.

Each cell also reports whether its nominal temperature was really sampled
(Wenzel et al. 2020, Sec. 4): the ratio of minibatch-gradient noise to
injected noise, and configurational / kinetic temperature estimates.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import pathlib
import warnings
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax import augment as augmentations
from bayesjax import data as datasets
from bayesjax import likelihoods, metrics, models, priors, sharding
from bayesjax._checks import check_int, check_positive
from bayesjax.base import BufferedState, with_sample_buffer
from bayesjax.inference import sgmcmc
from bayesjax.logjoint import TEMPERINGS, log_joint
from bayesjax.predictive import predictive
from bayesjax.progress import bar as progress_bar
from bayesjax.run import RunConfig, pooled_sample, run_chains

WENZEL_TEMPERATURES = tuple(float(10.0**x) for x in np.arange(-4.0, 0.01, 0.25))
LIKELIHOODS = {"categorical": likelihoods.categorical, "noisy_dirichlet": likelihoods.noisy_dirichlet}
OOD_SHIFTS = ("rot90", "noise", "flip")
METRICS = ("accuracy", "nll", "ece", "brier", "ood_auroc")
DIAGNOSTICS = ("grad_noise_ratio", "configurational_temperature", "kinetic_temperature", "diverged_chains")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Everything that defines a sweep's numbers (and so its cells' identity)."""

    dataset: str = "digits"
    method: str = "sgld"
    model: str = "mlp"
    hidden: tuple[int, ...] = (50, 50)
    likelihood: str = "categorical"
    tempering: str = "posterior"
    augment: bool = False
    temperatures: tuple[float, ...] = WENZEL_TEMPERATURES
    seeds: tuple[int, ...] = (0, 1)
    num_steps: int = 2000
    batch_size: int = 128
    step_size: float = 1e-4
    friction: float = 0.05
    num_cycles: int = 4
    num_chains: int = 2
    burnin: int = 1000
    thin: int = 50
    num_predictive_samples: int = 20
    prior_scale: float = 1.0
    ood: str = "rot90"
    split: int = 0
    data_root: str | None = None

    def validate(self) -> "SweepConfig":
        """Raises ValueError on a bad configuration; returns self."""
        if not self.temperatures or not self.seeds:
            raise ValueError("the grid is empty: give at least one temperature and one seed")
        for t in self.temperatures:
            check_positive("temperature", t)
        if self.method not in METHODS:
            raise ValueError(f"unknown sweep method {self.method!r}; choose from {sorted(METHODS)}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {self.likelihood!r}; choose from {sorted(LIKELIHOODS)}")
        if self.tempering not in TEMPERINGS:
            raise ValueError(f"tempering must be one of {TEMPERINGS}, got {self.tempering!r}")
        if self.model not in ("mlp", "cnn"):
            raise ValueError(f"model must be 'mlp' or 'cnn', got {self.model!r}")
        if self.ood not in OOD_SHIFTS:
            raise ValueError(f"ood must be one of {OOD_SHIFTS}, got {self.ood!r}")
        for name in ("num_steps", "batch_size", "num_chains", "thin", "num_predictive_samples", "num_cycles"):
            check_int(name, getattr(self, name))
        check_int("burnin", self.burnin, minimum=0)
        if self.burnin >= self.num_steps:
            raise ValueError(f"burnin ({self.burnin}) must be smaller than num_steps ({self.num_steps})")
        check_positive("step_size", self.step_size)
        check_positive("prior_scale", self.prior_scale)
        return self

    def cells(self) -> list[tuple[float, int]]:
        """The grid, seed-major: ``[(temperature, seed), ...]``."""
        return [(float(t), int(s)) for s in self.seeds for t in self.temperatures]

    def fingerprint(self) -> str:
        """Hash of every field but the grid: cells of equal fingerprint are interchangeable."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("temperatures", "seeds")}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


class Method(NamedTuple):
    """How a sweep builds a method from a log-joint with a traced temperature."""

    build: Callable
    momentum: bool  # SGHMC-style state: kinetic temperature is defined, noise scaled by friction


METHODS: dict[str, Method] = {
    "sgld": Method(lambda lj, c: sgmcmc.build_sgld(lj, c.step_size), False),
    "sghmc": Method(lambda lj, c: sgmcmc.build_sghmc(lj, c.step_size, c.friction), True),
    "cyclical_sgld": Method(
        lambda lj, c: sgmcmc.build_cyclical_sgld(lj, c.step_size, c.num_cycles, c.num_steps), False
    ),
}


def ood_inputs(x_test: np.ndarray, shift: str, seed: int = 0) -> np.ndarray:
    """A shifted copy of the test inputs to score out-of-distribution detection.

    ``rot90`` rotates images a quarter turn; ``flip`` mirrors them upside down;
    ``noise`` replaces inputs by standard Gaussian noise of the same shape.
    """
    if shift == "noise":
        return np.random.default_rng(seed).normal(size=x_test.shape).astype(x_test.dtype)
    if x_test.ndim != 4:
        raise ValueError(f"ood={shift!r} needs images [N, H, W, C]; this data set has inputs {x_test.shape[1:]}")
    return np.ascontiguousarray(np.rot90(x_test, axes=(1, 2)) if shift == "rot90" else x_test[:, ::-1])


class _Setup(NamedTuple):
    """The static, hashable part of a sweep: one compile per value."""

    config: SweepConfig
    model: models.Model
    augment: Callable | None
    num_data: int
    progress_every: int  # 0: no progress callback (then the program can enter the persistent cache)


def _tree_dot(a, b) -> jax.Array:
    return sum(jnp.sum(x * y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _num_params(tree) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


def configurational_temperature(grad_potential: Callable, samples) -> jax.Array:
    """<theta . grad U(theta)> / d over samples (leading axis), = T under exp(-U / T).

    By integration by parts E[theta_i dU/dtheta_i] = T for each coordinate
    (Wenzel et al. 2020, App. I), so a sampler that reaches the nominal
    temperature gives T back.
    """
    virial = jax.vmap(lambda p: _tree_dot(p, grad_potential(p)))(samples)
    return jnp.mean(virial) / _num_params(jax.tree.map(lambda leaf: leaf[0], samples))


def kinetic_temperature(momentum, step_size) -> jax.Array:
    """<v^2> / (d eps) for SGHMC momenta v in position units (v = sqrt(eps) p, p ~ N(0, T))."""
    return _tree_dot(momentum, momentum) / _num_params(momentum) / step_size


def gradient_noise_ratio(minibatch_grads, step_size, temperature, friction=1.0) -> jax.Array:
    """Minibatch-gradient noise over injected noise, per coordinate and step.

    An SG-MCMC step adds eps^2 Var[grad U_B] of gradient noise to the injected
    2 alpha eps T (alpha = 1 for SGLD); the nominal T is only sampled when this
    ratio is << 1 (Wenzel et al. 2020, Sec. 4).

    Args:
      minibatch_grads: gradients of U on several minibatches at one position
        (leaves with a leading batch axis).
      step_size: eps. temperature: T. friction: alpha (SGHMC), 1 for SGLD.
    """
    variance = sum(jnp.sum(jnp.var(g, axis=0)) for g in jax.tree.leaves(minibatch_grads))
    variance = variance / _num_params(jax.tree.map(lambda leaf: leaf[0], minibatch_grads))
    return step_size * variance / (2 * friction * temperature)


def _temperature_checks(setup: _Setup, lj, buffered, states: BufferedState, step_size, key, x, y):
    """Honest-temperature diagnostics of a cell, averaged over chains (see the estimators above)."""
    c = setup.config
    grad_potential = jax.grad(lambda p, batch: -lj.temperature * lj(p, batch))  # U = -T log p_T
    noise_key, sample_key = jax.random.split(key)

    def chain_noise_ratio(position, eps, chain_key):
        index = jax.vmap(lambda k: jax.random.choice(k, setup.num_data, (c.batch_size,), replace=False))(
            jax.random.split(chain_key, 8)
        )
        grads = jax.vmap(lambda i: grad_potential(position, (x[i], y[i])))(index)
        friction = c.friction if METHODS[c.method].momentum else 1.0
        return gradient_noise_ratio(grads, eps, lj.temperature, friction)

    ratio = jnp.mean(jax.vmap(chain_noise_ratio)(states.inner.position, step_size,
                                                 jax.random.split(noise_key, c.num_chains)))
    samples = pooled_sample(buffered, sample_key, states, 8)
    configurational = configurational_temperature(lambda p: grad_potential(p, (x, y)), samples)
    kinetic = jnp.array(jnp.nan, configurational.dtype)
    if METHODS[c.method].momentum:
        kinetic = jnp.mean(jax.vmap(kinetic_temperature)(states.inner.momentum, step_size))
    return ratio, configurational, kinetic


def _cell(setup: _Setup, temperature, seed, x, y, x_test, y_test, x_ood, bar_id):
    """One grid cell end to end: traced temperature and seed, static everything else."""
    c = setup.config
    lik = LIKELIHOODS[c.likelihood]()
    lj = log_joint(setup.model.apply, priors.gaussian(c.prior_scale), lik, setup.num_data,
                   temperature=temperature, tempering=c.tempering)
    algorithm = METHODS[c.method].build(lj, c)
    run_key, sample_key, check_key = jax.random.split(jax.random.key(seed), 3)
    capacity = c.num_predictive_samples
    config = RunConfig(c.num_steps, c.batch_size, c.num_chains, (capacity, c.burnin, c.thin),
                       init_fn=lambda k: setup.model.init(k, x[:1]), augment=setup.augment,
                       progress_every=setup.progress_every)
    states, info = run_chains(algorithm, config, run_key, None, x, y, bar_id)
    buffered = with_sample_buffer(algorithm, capacity, c.burnin, c.thin)
    samples = pooled_sample(buffered, sample_key, states, c.num_predictive_samples)
    pred = predictive(setup.model.apply, samples, x_test, lik)
    pred_ood = predictive(setup.model.apply, samples, x_ood, lik)
    grad_noise_ratio, configurational, kinetic = _temperature_checks(
        setup, lj, buffered, states, info.step_size[-1], check_key, x, y
    )
    return {
        "accuracy": metrics.accuracy(pred, y_test),
        "nll": metrics.nll(pred, y_test),
        "ece": metrics.ece(pred, y_test),
        "brier": metrics.brier(pred, y_test),
        "ood_auroc": metrics.auroc(pred.entropy, pred_ood.entropy),
        "grad_noise_ratio": grad_noise_ratio,
        "configurational_temperature": configurational,
        "kinetic_temperature": kinetic,
        "diverged_chains": jnp.sum(states.diverged_at >= 0),
    }


@functools.partial(jax.jit, static_argnums=(0,))
def _run_chunk(setup: _Setup, temperatures, seeds, x, y, x_test, y_test, x_ood, bar_id):
    cell = functools.partial(_cell, setup)
    return jax.vmap(cell, (0, 0, None, None, None, None, None, None))(
        temperatures, seeds, x, y, x_test, y_test, x_ood, bar_id
    )


def chunk_size(num_cells: int, num_devices: int) -> int:
    """Cells per compiled call: about 4 per device, balanced, a multiple of the device count."""
    num_chunks = max(1, math.ceil(num_cells / (4 * num_devices)))
    per_chunk = math.ceil(num_cells / num_chunks)
    return math.ceil(per_chunk / num_devices) * num_devices


def _checksum(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _cell_path(out: pathlib.Path, config: SweepConfig, temperature: float, seed: int) -> pathlib.Path:
    return out / "cells" / f"{config.fingerprint()}_T{temperature:.6g}_seed{seed}.json"


def _write_atomic(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_cell(path: pathlib.Path, config: SweepConfig) -> dict | None:
    """A finished cell's record, or None when missing, corrupted or from another configuration."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("checksum") != _checksum(record):
        return None
    if record.get("fingerprint") != config.fingerprint():
        return None
    return record


@functools.lru_cache(maxsize=16)
def _setup(config: SweepConfig) -> _Setup:
    """Cached per configuration (grid excluded), so reruns hit the same compiled function."""
    dataset = datasets.load(config.dataset, split=config.split, root=config.data_root)
    if config.model == "cnn":
        model = models.cnn(dataset.num_classes)
    else:
        model = models.mlp(list(config.hidden), dataset.num_classes)
    augment = None
    if config.augment:
        augment = augmentations.random_shift(1 if dataset.x_train.shape[1] <= 8 else 2)
    return _Setup(config, model, augment, len(dataset.y_train), 0)


def run_sweep(config: SweepConfig, out: str | os.PathLike, progress: bool = True,
              cells_per_chunk: int | None = None) -> list[dict]:
    """Runs (or resumes) a temperature x seed sweep and returns one record per cell.

    Args:
      config: the sweep (validated here).
      out: results folder; finished cells go to ``out/cells``.
      progress: one progress bar over the whole grid.
      cells_per_chunk: cells per compiled call (default :func:`chunk_size`);
        it fixes which cells share a call, so keep it when resuming.

    Returns:
      Records ``{"temperature", "seed", metrics..., diagnostics...}`` in grid order.
    """
    config.validate()
    dataset = datasets.load(config.dataset, split=config.split, root=config.data_root)
    if dataset.task != "classification":
        raise ValueError(f"sweeps are for classification; {config.dataset!r} is a {dataset.task} data set")
    if config.batch_size > len(dataset.y_train):
        raise ValueError(f"batch_size {config.batch_size} exceeds the {len(dataset.y_train)} training examples")
    out = pathlib.Path(out)
    cells = config.cells()
    devices = jax.devices()
    per_chunk = cells_per_chunk or chunk_size(len(cells), len(devices))
    chunks = [cells[i:i + per_chunk] for i in range(0, len(cells), per_chunk)]
    pending = [chunk for chunk in chunks
               if any(load_cell(_cell_path(out, config, t, s), config) is None for t, s in chunk)]

    if pending:
        setup = _setup(dataclasses.replace(config, temperatures=(), seeds=()))
        setup = setup._replace(progress_every=max(1, config.num_steps // 100) if progress else 0)
        x_ood = ood_inputs(dataset.x_test, config.ood)
        mesh = sharding.mesh(chains=math.gcd(per_chunk, len(devices)))
        place = functools.partial(jax.device_put, device=sharding.chain_sharding(mesh))
        with progress_bar(progress, len(pending) * config.num_steps, f"sweep {len(cells)} cells") as bar:
            for done, chunk in enumerate(pending):
                bar.offset = done * config.num_steps
                padded = chunk + [chunk[-1]] * (per_chunk - len(chunk))
                temperatures = place(jnp.asarray([t for t, _ in padded]))
                seeds = place(jnp.asarray([s for _, s in padded], jnp.uint32))
                values = jax.device_get(_run_chunk(setup, temperatures, seeds, dataset.x_train, dataset.y_train,
                                                   dataset.x_test, dataset.y_test, x_ood, bar.id))
                for i, (t, s) in enumerate(chunk):
                    record = {"fingerprint": config.fingerprint(), "temperature": t, "seed": s}
                    record.update({name: float(values[name][i]) for name in METRICS + DIAGNOSTICS})
                    record["checksum"] = _checksum(record)
                    _write_atomic(_cell_path(out, config, t, s), json.dumps(record, indent=1))

    records = [load_cell(_cell_path(out, config, t, s), config) for t, s in cells]
    _warn_unmet_temperatures(records)
    return [{k: v for k, v in r.items() if k not in ("checksum", "fingerprint")} for r in records]


def _warn_unmet_temperatures(records: list[dict]) -> None:
    """Warns where the nominal temperature is not what the sampler sampled."""
    unmet = [r for r in records
             if r["grad_noise_ratio"] > 0.25 or not 0.5 < r["configurational_temperature"] / r["temperature"] < 2]
    if unmet:
        cells = ", ".join(f"T={r['temperature']:.3g} (seed {r['seed']}: noise ratio {r['grad_noise_ratio']:.2g}, "
                          f"T_conf {r['configurational_temperature']:.3g})" for r in unmet[:6])
        more = f" and {len(unmet) - 6} more" if len(unmet) > 6 else ""
        warnings.warn(f"nominal temperature not met in {len(unmet)} cell(s): {cells}{more}. Minibatch gradient "
                      "noise or too few steps: lower the step size or raise the batch size.", stacklevel=2)
    diverged = [r for r in records if r["diverged_chains"] > 0]
    if diverged:
        warnings.warn(f"{len(diverged)} cell(s) had diverged chains (their metrics are NaN): "
                      + ", ".join(f"T={r['temperature']:.3g} seed {r['seed']}" for r in diverged[:6]), stacklevel=2)


def write_results(records: list[dict], config: SweepConfig, out: str | os.PathLike) -> None:
    """``results.json`` (config + cells) and ``results.csv`` in ``out``."""
    out = pathlib.Path(out)
    payload = {"config": dataclasses.asdict(config), "cells": records}
    _write_atomic(out / "results.json", json.dumps(payload, indent=1))
    columns = list(records[0])
    lines = [",".join(columns)] + [",".join(repr(r[c]) for c in columns) for r in records]
    _write_atomic(out / "results.csv", "\n".join(lines) + "\n")
