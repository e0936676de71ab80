"""Matplotlib figures. matplotlib is imported lazily and runs headless (Agg)."""
from __future__ import annotations

import math
import os

import numpy as np

from bayesjax.metrics import reliability_bins


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _reliability_axes(ax, predictives: dict, y, num_bins: int, title: str, legend: bool = True) -> None:
    """Draws the diagonal and one accuracy-against-confidence line per predictive on ``ax``."""
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
    for name, pred in predictives.items():
        counts, accuracy, confidence = (np.asarray(a) for a in reliability_bins(pred, y, num_bins))
        filled = counts > 0
        ax.plot(confidence[filled], accuracy[filled], marker="o", markersize=3, label=name)
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title=title)
    if legend:
        ax.legend(loc="upper left", fontsize=8)


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
    _reliability_axes(ax, predictives, y, num_bins, "Reliability diagram")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reliability_grid(predictives: dict, y, path: str | os.PathLike, num_bins: int = 15, columns: int = 4) -> None:
    """One small reliability diagram per method, on a grid, saved to ``path``.

    Args:
      predictives: method name -> :class:`~bayesjax.predictive.ClassificationPredictive`.
      y: integer labels ``[N]``.
      path: output file.
      num_bins: equal-width confidence bins.
      columns: panels per row.
    """
    plt = _pyplot()
    rows = -(-len(predictives) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    for ax, (name, pred) in zip(axes.flat, predictives.items()):
        _reliability_axes(ax, {name: pred}, y, num_bins, name, legend=False)
    for ax in axes.flat[len(predictives):]:
        ax.axis("off")
    fig.suptitle("Reliability diagrams (dashed: calibrated; below it: over-confident)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_curves(settings: dict, path: str | os.PathLike, metrics=("accuracy", "nll", "ece")) -> None:
    """Test metrics against temperature (log axis): mean and spread over seeds, one curve per setting.

    Args:
      settings: setting name (e.g. ``"augmentation on"``) -> the sweep's cell
        records (dicts with ``temperature``, ``seed`` and the metrics).
      path: output file.
      metrics: record keys to plot, one panel each.
    """
    plt = _pyplot()
    legend_rows = math.ceil(len(settings) / 4)  # one legend under the panels, 4 curves a row
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.4 + 0.25 * legend_rows), squeeze=False)
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
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=min(4, len(settings)), fontsize=8)
    fig.suptitle("Cold-posterior sweep (T = 1 dotted; band: min-max over seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0.25 * legend_rows / fig.get_figheight() + 0.04, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def predictive_bands(predictives: dict, x, x_train, y_train, path: str | os.PathLike, y_mean: float = 0.0,
                     y_std: float = 1.0) -> None:
    """1-D regression: predictive mean and +-2 standard deviations with the training data, one panel per method.

    The seed's "standard NN vs Bayesian NN" picture: a point estimate's band
    is its noise alone, a Bayesian model average widens where data are
    missing (in-between and outside the inputs; Foong et al. 2019). Targets
    are drawn in original units ``y * y_std + y_mean``.

    Args:
      predictives: method name -> :class:`~bayesjax.predictive.RegressionPredictive` at ``x``.
      x: sorted 1-D inputs ``[M]`` the predictives were evaluated at.
      x_train: training inputs ``[N]``.
      y_train: (standardized) training targets ``[N]``.
      path: output file.
      y_mean: mean of the standardization.
      y_std: scale of the standardization.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(predictives), figsize=(4.5 * len(predictives), 3.6), squeeze=False,
                             sharey=True)
    for ax, (name, pred) in zip(axes[0], predictives.items()):
        mean = np.asarray(pred.mean) * y_std + y_mean
        std = np.sqrt(np.asarray(pred.variance)) * y_std
        ax.scatter(x_train, np.asarray(y_train) * y_std + y_mean, s=4, color="0.3", label="training data")
        (line,) = ax.plot(x, mean, label="predictive mean")
        ax.fill_between(x, mean - 2 * std, mean + 2 * std, color=line.get_color(), alpha=0.25, linewidth=0,
                        label="mean +- 2 std")
        ax.set(xlabel="x (standardized)", title=name)
    axes[0][0].set_ylabel("y")
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
