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


def sweep_curves(settings: dict, path: str | os.PathLike, metrics=("accuracy", "nll")) -> None:
    """Test metrics against temperature (log axis): mean and spread over seeds, one curve per setting.

    Args:
      settings: setting name (e.g. ``"augmentation on"``) -> the sweep's cell
        records (dicts with ``temperature``, ``seed`` and the metrics).
      path: output file.
      metrics: record keys to plot, one panel each.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, records in settings.items():
            temperatures = sorted({r["temperature"] for r in records})
            values = [[r[metric] for r in records if r["temperature"] == t] for t in temperatures]
            mean = np.array([np.mean(v) for v in values])
            low = np.array([np.min(v) for v in values])
            high = np.array([np.max(v) for v in values])
            (line,) = ax.plot(temperatures, mean, marker="o", markersize=3, label=name)
            ax.fill_between(temperatures, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.axvline(1.0, color="0.5", linestyle=":", linewidth=1)
        ax.set(xscale="log", xlabel="temperature T", ylabel=f"test {metric}")
        ax.legend(fontsize=8)
    fig.suptitle("Cold-posterior sweep (T = 1 dotted; band: min-max over seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
