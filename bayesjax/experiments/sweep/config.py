"""What defines a sweep's numbers: :class:`SweepConfig`, its grid and its fingerprint."""
from __future__ import annotations

import dataclasses

import numpy as np

from bayesjax import likelihoods, priors
from bayesjax.checks import check_int, check_positive
from bayesjax.experiments import outputs, recipes
from bayesjax.experiments.ood import OOD_SHIFTS
from bayesjax.experiments.validation import VALIDATION_FRACTION, check_laplace_prior
from bayesjax.logjoint import TEMPERINGS

WENZEL_TEMPERATURES = tuple(float(10.0**x) for x in np.arange(-4.0, 0.01, 0.25))
LIKELIHOODS = {"categorical": likelihoods.categorical, "noisy_dirichlet": likelihoods.noisy_dirichlet}
LAPLACE_PREDICTIVES = ("glm", "mc")
PRIORS = ("isotropic",) + priors.LAYERWISE_FAMILIES
"""``isotropic``: N(0, prior_scale^2) on every weight; the others He-scaled per layer
(:func:`bayesjax.priors.layerwise`, weight_scale = prior_scale; Student-t with 3 degrees of freedom)."""
METHODS: dict[str, recipes.Recipe] = {name: recipe for name, recipe in recipes.METHODS.items() if recipe.sweep_models}
"""The methods a sweep runs: the recipes with ``sweep_models`` (see :mod:`bayesjax.experiments.sweep.methods`)."""


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Everything that defines a sweep's numbers (and so its cells' identity).

    ``step_size``, ``friction``, ``num_cycles``, ``num_chains``, ``burnin`` and
    ``thin`` drive the SG-MCMC methods (``step_size`` is a learning rate per
    example, see :mod:`bayesjax.inference.sgmcmc`); ``learning_rate`` is Adam's for the
    methods that optimize (VI's ELBO, Laplace's MAP); ``laplace_predictive``
    is ``"glm"`` (linearized, probit link, as ``bayesjax compare``) or ``"mc"``
    (weight draws). With ``epochs_per_cycle`` the cyclical methods keep one
    draw at the end of each cycle in place of ``burnin`` and ``thin``. See
    :data:`METHODS`.

    ``laplace_prior`` sets the Laplace methods' prior precision in each cell
    (one of :data:`~bayesjax.experiments.validation.LAPLACE_PRIORS`, see
    :func:`~bayesjax.experiments.validation.tune_prior`): ``"untuned"`` (the
    prior's), ``"evidence"``, or ``"validation"``, for which
    ``validation_fraction`` of the training split is held out (drawn by
    ``jax.random.key(split)``, the same examples for every cell) and every
    cell trains on the rest. ``validation_fraction`` applies to
    ``"validation"`` only.
    """

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
    step_size: float = 0.1
    friction: float = 0.05
    num_cycles: int = 4
    epochs_per_cycle: int | None = None
    layerwise_preconditioner: bool = False
    num_chains: int = 2
    burnin: int = 1000
    thin: int = 50
    learning_rate: float = 1e-3
    laplace_predictive: str = "glm"
    laplace_prior: str = "untuned"
    validation_fraction: float = VALIDATION_FRACTION
    num_predictive_samples: int = 20
    prior: str = "isotropic"
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
        for seed in self.seeds:
            if check_int("seed", seed, minimum=0) >= 2**32:
                raise ValueError(f"a seed must be below 2^32 (the sweep keys cells by uint32 seeds), got {seed}")
        for name in ("temperatures", "seeds"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ValueError(f"{name} repeat a value: {getattr(self, name)}")
        if self.method not in METHODS:
            raise ValueError(f"unknown sweep method {self.method!r}; choose from {sorted(METHODS)}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {self.likelihood!r}; choose from {sorted(LIKELIHOODS)}")
        if self.tempering not in TEMPERINGS:
            raise ValueError(f"tempering must be one of {TEMPERINGS}, got {self.tempering!r}")
        if self.model not in ("mlp", "cnn"):
            raise ValueError(f"model must be 'mlp' or 'cnn', got {self.model!r}")
        if self.model not in METHODS[self.method].sweep_models:
            raise ValueError(f"method {self.method!r} supports the models {METHODS[self.method].sweep_models}, "
                             f"not {self.model!r}")
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {self.prior!r}")
        if METHODS[self.method].laplace is not None and self.prior not in ("isotropic", "gaussian"):
            raise ValueError(f"method {self.method!r} needs a Gaussian prior (its precision enters the "
                             f"Laplace posterior), not {self.prior!r}")
        if self.laplace_predictive not in LAPLACE_PREDICTIVES:
            raise ValueError(f"laplace_predictive must be one of {LAPLACE_PREDICTIVES}, "
                             f"got {self.laplace_predictive!r}")
        check_laplace_prior(self.laplace_prior, self.validation_fraction)
        if self.laplace_prior != "untuned" and METHODS[self.method].laplace is None:
            raise ValueError(f"laplace_prior={self.laplace_prior!r} applies to the Laplace methods "
                             f"({', '.join(n for n, r in METHODS.items() if r.laplace)}), not {self.method!r}")
        if self.ood not in OOD_SHIFTS:
            raise ValueError(f"ood must be one of {OOD_SHIFTS}, got {self.ood!r}")
        for name in ("num_steps", "batch_size", "num_chains", "thin", "num_predictive_samples", "num_cycles"):
            check_int(name, getattr(self, name))
        if self.layerwise_preconditioner and not METHODS[self.method].momentum:
            raise ValueError(f"the layerwise preconditioner is SGHMC's (sghmc, cyclical_sghmc), not {self.method!r}'s")
        if self.epochs_per_cycle is not None:
            check_int("epochs_per_cycle", self.epochs_per_cycle)
            if not self.method.startswith("cyclical"):
                raise ValueError(f"epochs_per_cycle applies to the cyclical methods, not {self.method!r}")
        check_int("burnin", self.burnin, minimum=0)
        check_int("split", self.split, minimum=0)
        if (METHODS[self.method].kind == "chains" and self.epochs_per_cycle is None
                and self.burnin + self.thin > self.num_steps):
            raise ValueError(f"no position would be kept: the first is at step burnin + thin = "
                             f"{self.burnin + self.thin}, after the last step {self.num_steps}")
        for name in ("step_size", "learning_rate", "prior_scale"):
            check_positive(name, getattr(self, name))
        return self

    def cycles(self, num_data: int) -> tuple[int, int]:
        """``(num_cycles, cycle_length)`` of the cyclical methods on ``num_data`` training examples.

        With ``epochs_per_cycle`` a cycle lasts that many epochs of
        ``num_data // batch_size`` steps (Zhang et al. 2020 count cycles in
        epochs); otherwise the run holds ``num_cycles`` cycles.
        """
        if self.epochs_per_cycle is None:
            num_cycles = self.num_cycles
        else:
            cycle = self.epochs_per_cycle * max(1, num_data // self.batch_size)
            if cycle > self.num_steps:
                raise ValueError(f"a cycle of {self.epochs_per_cycle} epoch(s) is {cycle} steps, more than "
                                 f"num_steps={self.num_steps}")
            num_cycles = self.num_steps // cycle
        return num_cycles, -(-self.num_steps // num_cycles)

    def cells(self) -> list[tuple[float, int]]:
        """The grid, seed-major: ``[(temperature, seed), ...]``."""
        return [(float(t), int(s)) for s in self.seeds for t in self.temperatures]

    def fingerprint(self) -> str:
        """Hash of every field but the grid: cells of equal fingerprint are interchangeable.

        ``laplace_prior`` enters unless ``"untuned"`` and ``validation_fraction``
        only with ``"validation"``: a sweep that does not tune keeps the
        fingerprint (and cell names) it had before the two fields existed.
        """
        left_out = {"temperatures", "seeds"}
        if self.laplace_prior == "untuned":
            left_out.add("laplace_prior")
        if self.laplace_prior != "validation":
            left_out.add("validation_fraction")
        return outputs.config_hash({k: v for k, v in dataclasses.asdict(self).items() if k not in left_out})
