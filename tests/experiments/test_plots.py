"""Every figure is written as a non-empty PNG for small inputs."""
import jax
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.experiments import plots

PNG = b"\x89PNG\r\n\x1a\n"


def draws(model, x, key, num_samples=3):
    return jax.vmap(lambda k: model.init(k, x[:1]))(jax.random.split(key, num_samples))


@pytest.fixture(scope="module")
def classification():
    """Two small classification predictives (3 classes, 30 inputs) and their labels."""
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    y = np.arange(30) % 3
    model = bj.models.mlp([8], num_outputs=3)
    lik = bj.likelihoods.categorical()
    preds = {name: bj.predictive(model.apply, draws(model, x, jax.random.key(seed)), x, lik)
             for seed, name in enumerate(["map", "sgld"])}
    return preds, y


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 1000


def test_reliability_diagram(classification, tmp_path):
    preds, y = classification
    plots.reliability_diagram(preds, y, tmp_path / "reliability.png", num_bins=5)
    assert_png(tmp_path / "reliability.png")


def test_reliability_grid_leaves_spare_panels_blank(classification, tmp_path):
    preds, y = classification
    plots.reliability_grid(preds, y, tmp_path / "grid.png", num_bins=5, columns=3)  # 2 methods on 3 panels
    assert_png(tmp_path / "grid.png")


def test_sweep_curves(tmp_path):
    records = [{"temperature": t, "seed": s, "accuracy": 0.9 - 0.01 * s, "nll": 0.3 + t, "ece": 0.02 * t}
               for t in (1e-2, 1e-1, 1.0) for s in (0, 1)]
    plots.sweep_curves({"augmentation off": records, "augmentation on": records}, tmp_path / "sweep.png")
    assert_png(tmp_path / "sweep.png")


def test_predictive_bands(tmp_path):
    x_train = np.linspace(-1, 1, 20, dtype=np.float32)
    y_train = np.sin(3 * x_train)
    grid = np.linspace(-2, 2, 50, dtype=np.float32)
    model = bj.models.mlp([8], num_outputs=1)
    lik = bj.likelihoods.gaussian(0.1)
    preds = {name: bj.predictive(model.apply, draws(model, grid[:, None], jax.random.key(seed)), grid[:, None], lik)
             for seed, name in enumerate(["map", "hmc"])}
    plots.predictive_bands(preds, grid, x_train, y_train, tmp_path / "bands.png", y_mean=1.0, y_std=2.0)
    assert_png(tmp_path / "bands.png")
