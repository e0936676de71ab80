"""Named sweeps of the research protocol: ``bayesjax sweep --preset NAME`` (flags given with it override).

Both reproduce the Fashion-MNIST cold-posterior grid (Wenzel et al. 2020;
Fortuin et al. 2021, "Bayesian Neural Network Priors Revisited"): the 17
temperatures 10^-4 ... 1, 3 seeds, augmentation off and on (random crops
after 2-pixel padding and horizontal flips), a He-scaled Gaussian prior
(``--prior laplace`` or ``student_t`` for Fortuin et al.'s heavy tails), and
cyclical SGHMC (Zhang et al. 2020) with Wenzel et al.'s layerwise
preconditioner (refreshed every epoch) for 30 epochs of batches of 128 in
cycles of 3 epochs, one draw at the end of each cycle (10 per chain). The
learning rate is per example (see :mod:`bayesjax.inference.sgmcmc`).

* ``fmnist-mlp``: two hidden layers of 100 units.
* ``fmnist-cnn``: Fortuin et al.'s CNN (:func:`bayesjax.models.fortuin_cnn`).
"""
from __future__ import annotations

_PROTOCOL = {
    "dataset": "fashion_mnist",
    "method": "cyclical_sghmc",
    "prior": "gaussian",
    "temperatures": "wenzel",
    "seeds": (0, 1, 2),
    "augment": "both",
    "batch_size": 128,
    "steps": 30 * (60_000 // 128),
    "epochs_per_cycle": 3,
    "samples": 10,
    "chains": 1,
    "step_size": 0.05,
    "friction": 0.1,
    "layerwise_preconditioner": True,
}

PRESETS: dict[str, dict] = {
    "fmnist-mlp": {**_PROTOCOL, "model": "mlp", "hidden": "100,100"},
    "fmnist-cnn": {**_PROTOCOL, "model": "cnn"},
}
"""Preset name -> defaults of the ``bayesjax sweep`` flags (argparse destinations)."""
