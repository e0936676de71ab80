"""What a comparison runs: :class:`CompareConfig`, checked before any data is loaded, and each method's budget."""
from __future__ import annotations

import dataclasses

from bayesjax.checks import check_int, check_positive
from bayesjax.experiments.ood import OOD_SHIFTS
from bayesjax.experiments.recipes import METHODS, Budget
from bayesjax.experiments.validation import VALIDATION_FRACTION, check_laplace_prior

HMC_MAX_PARAMS = 10_000
"""Largest model (weights) for the full-batch HMC reference by default; the digits MLP 50-50 has 6,310."""
CONFORMAL_ALPHA = 0.1
"""Miscoverage of the split-conformal sets and intervals: 90% coverage."""


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """A comparison's settings (see ``bayesjax compare --help``).

    ``steps``, ``members`` and ``samples``, when given, replace that entry of
    every method's default :class:`~bayesjax.experiments.recipes.Budget` (tiny
    runs, tests). ``methods=None`` is every method the model allows;
    ``step_size=None`` is :data:`~bayesjax.experiments.compare.problem.SGMCMC_RATE`
    per example; ``ood=None`` is ``rot90`` for images, else ``noise``.

    ``validation_fraction`` of the training split (drawn once from the seed's
    key, the same for every method) is held out: every method then trains on
    the remaining examples, the Laplace methods tune their prior precision on
    it when ``laplace_prior`` is ``"validation"`` (one of
    :data:`~bayesjax.experiments.validation.LAPLACE_PRIORS`; ``None``:
    ``"validation"`` when there is a validation split, else ``"untuned"``),
    and every method's predictive is calibrated on it (temperature scaling,
    split-conformal sets or intervals at :data:`CONFORMAL_ALPHA`).
    ``validation_fraction=0`` trains on the whole training split and turns
    both off.
    """

    dataset: str = "digits"
    methods: tuple[str, ...] | None = None
    model: str = "mlp"
    hidden: tuple[int, ...] = (50, 50)
    prior_scale: float = 1.0
    temperature: float = 1.0
    noise_std: float = 0.15
    batch_size: int = 128
    learning_rate: float = 1e-3
    step_size: float | None = None
    steps: int | None = None
    members: int | None = None
    samples: int | None = None
    laplace_predictive: str = "glm"
    laplace_prior: str | None = None
    validation_fraction: float = VALIDATION_FRACTION
    ood: str | None = None
    hmc_max_params: int = HMC_MAX_PARAMS
    seed: int = 0
    split: int = 0
    data_root: str | None = None

    def validate(self) -> "CompareConfig":
        """Raises ValueError on settings that are wrong whatever the data; returns self."""
        if self.methods is not None:
            unknown = [m for m in self.methods if m not in METHODS]
            if unknown:
                raise ValueError(f"unknown method(s) {unknown}; available: {', '.join(METHODS)}")
            if not self.methods or len(set(self.methods)) != len(self.methods):
                raise ValueError(f"methods must be a non-empty list without repeats, got {list(self.methods)}")
        if self.model not in ("mlp", "cnn"):
            raise ValueError(f"model must be 'mlp' or 'cnn', got {self.model!r}")
        if self.laplace_predictive not in ("glm", "mc"):
            raise ValueError(f"laplace_predictive must be 'glm' or 'mc', got {self.laplace_predictive!r}")
        check_laplace_prior(self.laplace_prior, self.validation_fraction, automatic=True)
        if self.ood is not None and self.ood not in OOD_SHIFTS:
            raise ValueError(f"ood must be one of {OOD_SHIFTS}, got {self.ood!r}")
        if self.steps is not None:
            check_int("steps", self.steps, minimum=2)  # burn-in needs room
        for name in ("members", "samples"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name))
        for name in ("batch_size", "hmc_max_params"):
            check_int(name, getattr(self, name))
        if check_int("seed", self.seed, minimum=0) >= 2**32:
            raise ValueError(f"seed must be below 2^32 (a larger one would be cut to 32 bits), got {self.seed}")
        check_int("split", self.split, minimum=0)
        for width in self.hidden:
            check_int("hidden width", width)
        for name in ("prior_scale", "temperature", "noise_std", "learning_rate"):
            check_positive(name, getattr(self, name))
        if self.step_size is not None:
            check_positive("step_size", self.step_size)
        return self

    def budget(self, name: str) -> Budget:
        """The method's default budget with this configuration's overrides."""
        default = METHODS[name].budget
        return Budget(
            default.steps if self.steps is None or default.steps is None else self.steps,
            default.members if self.members is None else self.members,
            default.samples if self.samples is None else self.samples,
        )
