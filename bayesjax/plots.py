"""Matplotlib figures. matplotlib is imported lazily and runs headless (Agg)."""
from __future__ import annotations

import os

import numpy as np

from bayesjax.metrics import reliability_bins


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def reliability_diagram(predictives: dict, y, path: str | os.PathLike, num_bins: int = 15) -> None:
    """Accuracy against confidence per bin, one line per method, saved to ``path``.

    A calibrated model lies on the diagonal; below it is over-confident
    (Guo et al. 2017, "On calibration of modern neural networks").

    Args:
      predictives: method name -> :class:`~bayesjax.predictive.ClassificationPredictive`.
      y: integer labels ``[N]``.
      path: output file (PNG by extension).
      num_bins: equal-width confidence bins.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
    for name, pred in predictives.items():
        counts, accuracy, confidence = (np.asarray(a) for a in reliability_bins(pred, y, num_bins))
        filled = counts > 0
        ax.plot(confidence[filled], accuracy[filled], marker="o", markersize=3, label=name)
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="Reliability diagram")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
