"""Tests for bayesjax.metrics against scikit-learn, SciPy, NumPy and hand-worked numbers."""
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import brier_score_loss, roc_auc_score

from bayesjax import likelihoods, metrics
from bayesjax.predictive import ClassificationPredictive, RegressionPredictive, predictive

ATOL = 1e-5  # float32 throughout


def _cls_pred(probs):
    probs = np.asarray(probs, dtype=np.float32)
    return ClassificationPredictive(jnp.log(jnp.asarray(probs)), jnp.zeros(probs.shape[0], jnp.float32))


def _random_cls(n=200, c=5, seed=0, concentration=0.5):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(c, concentration), size=n).astype(np.float32)
    probs = np.clip(probs, 1e-6, None)
    probs /= probs.sum(-1, keepdims=True)
    y = rng.integers(0, c, size=n).astype(np.int32)
    return _cls_pred(probs), probs, y


def _random_reg(s=7, n=50, seed=0):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(s, n)).astype(np.float32)
    var = rng.uniform(0.2, 2.0, size=(s, n)).astype(np.float32)
    y = rng.normal(size=n).astype(np.float32)
    return RegressionPredictive(jnp.asarray(mu), jnp.asarray(var)), mu.astype(np.float64), var.astype(np.float64), y


# ----------------------------------------------------------------------------- classification


def test_accuracy_and_nll_match_numpy():
    pred, probs, y = _random_cls()
    probs64 = np.exp(np.log(probs.astype(np.float64)))
    assert float(metrics.accuracy(pred, y)) == pytest.approx(np.mean(probs.argmax(-1) == y), abs=1e-7)
    expected_nll = -np.mean(np.log(probs64[np.arange(len(y)), y]))
    assert float(metrics.nll(pred, y)) == pytest.approx(expected_nll, abs=ATOL)


def test_brier_multiclass_matches_numpy_formula():
    pred, probs, y = _random_cls(c=4, seed=1)
    onehot = np.eye(4)[y]
    expected = np.mean(np.sum((probs.astype(np.float64) - onehot) ** 2, axis=-1))
    assert float(metrics.brier(pred, y)) == pytest.approx(expected, abs=ATOL)
    if "scale_by_half" in inspect.signature(brier_score_loss).parameters:  # sklearn >= 1.7: multiclass form
        sk = brier_score_loss(y, probs, labels=np.arange(4), scale_by_half=False)
        assert float(metrics.brier(pred, y)) == pytest.approx(sk, abs=ATOL)


def test_brier_binary_is_twice_sklearn():
    pred, probs, y = _random_cls(c=2, seed=2)
    sk = brier_score_loss(y, probs[:, 1])  # binary form: mean (p_1 - y)^2
    assert float(metrics.brier(pred, y)) == pytest.approx(2 * sk, abs=ATOL)


def test_ece_hand_example():
    # 4 classes, 2 bins: bin 0 = [0, 0.5], bin 1 = (0.5, 1] (right-closed, bin 0 holds 0).
    # point  probs                     label  conf  argmax  correct  bin
    #   1    [.4, .3, .2, .1]            0     .4     0       1       0
    #   2    [.2, .4, .3, .1]            2     .4     1       0       0
    #   3    [.5, .25, .125, .125]       1     .5     0       0       0   <- on the edge 0.5: bin 0
    #   4    [.9, .05, .03, .02]         0     .9     0       1       1
    #   5    [.1, .7, .1, .1]            1     .7     1       1       1
    #   6    [.2, .1, .6, .1]            3     .6     2       0       1
    # bin 0: acc = 1/3, conf = (.4+.4+.5)/3 = 1.3/3, |gap| = .3/3 = .1,   weight 3/6 -> .05
    # bin 1: acc = 2/3, conf = (.9+.7+.6)/3 = 2.2/3, |gap| = .2/3,       weight 3/6 -> .0333...
    # ECE = .05 + .1/3 = 1/12 = 0.08333...
    # (with left-closed bins point 3 would move to bin 1 and the ECE would be 0.15.)
    probs = [
        [0.4, 0.3, 0.2, 0.1],
        [0.2, 0.4, 0.3, 0.1],
        [0.5, 0.25, 0.125, 0.125],
        [0.9, 0.05, 0.03, 0.02],
        [0.1, 0.7, 0.1, 0.1],
        [0.2, 0.1, 0.6, 0.1],
    ]
    y = np.array([0, 2, 1, 0, 1, 3])
    pred = _cls_pred(probs)
    assert float(pred.probs[2].max()) == 0.5  # the edge case really sits on the edge
    assert float(metrics.ece(pred, y, num_bins=2)) == pytest.approx(1 / 12, abs=1e-6)
    counts, acc, conf = metrics.reliability_bins(pred, y, num_bins=2)
    np.testing.assert_allclose(counts, [3, 3])
    np.testing.assert_allclose(acc, [1 / 3, 2 / 3], atol=1e-6)
    np.testing.assert_allclose(conf, [1.3 / 3, 2.2 / 3], atol=1e-6)


def _numpy_ece(probs, y, num_bins):
    conf = probs.max(-1)
    correct = probs.argmax(-1) == y
    total = 0.0
    for b in range(num_bins):
        lo, hi = np.float32(b / num_bins), np.float32((b + 1) / num_bins)
        in_bin = (conf > lo) & (conf <= hi) if b > 0 else (conf <= hi)
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return total


@pytest.mark.parametrize("num_bins", [1, 10, 15])
def test_ece_matches_numpy_loop(num_bins):
    pred, _, y = _random_cls(n=500, c=3, seed=3, concentration=0.3)
    probs = np.asarray(pred.probs)  # the same float32 confidences the metric bins
    assert float(metrics.ece(pred, y, num_bins)) == pytest.approx(_numpy_ece(probs, y, num_bins), abs=ATOL)


def test_ece_perfectly_calibrated_and_confident():
    # one-hot predictions that are always right: conf = acc = 1 in the last bin
    y = np.array([0, 1, 2, 1])
    pred = _cls_pred(np.eye(3)[y] * (1 - 2e-7) + 1e-7)
    assert float(metrics.ece(pred, y)) == pytest.approx(0.0, abs=1e-5)


# ----------------------------------------------------------------------------- regression


@pytest.mark.parametrize("y_std", [1.0, 3.7])
def test_regression_metrics_in_original_units(y_std):
    pred, mu, var, y = _random_reg()
    y_mean = -2.0
    # everything mapped back to the original units, where no y_std appears
    y_orig = y * y_std + y_mean
    mu_orig, sd_orig = mu * y_std + y_mean, np.sqrt(var) * y_std
    mixture_mean = mu_orig.mean(0)
    mixture_var = var.mean(0) * y_std**2 + mu_orig.var(0)

    expected_rmse = np.sqrt(np.mean((mixture_mean - y_orig) ** 2))
    expected_nll = -np.mean(np.log(np.mean(stats.norm.pdf(y_orig, mu_orig, sd_orig), axis=0)))
    expected_gnll = -np.mean(stats.norm.logpdf(y_orig, mixture_mean, np.sqrt(mixture_var)))

    assert float(metrics.rmse(pred, y, y_std)) == pytest.approx(expected_rmse, rel=1e-5)
    assert float(metrics.nll(pred, y, y_std)) == pytest.approx(expected_nll, abs=ATOL)
    assert float(metrics.gaussian_nll(pred, y, y_std)) == pytest.approx(expected_gnll, abs=ATOL)


def test_gaussian_nll_equals_nll_for_one_component():
    pred, _, _, y = _random_reg(s=1)
    assert float(metrics.gaussian_nll(pred, y)) == pytest.approx(float(metrics.nll(pred, y)), abs=ATOL)


def test_through_predictive_reducer():
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(30, 3)), jnp.float32)
    apply = lambda w, x: x @ w  # noqa: E731
    # regression: 5 samples of a 3 -> 1 linear model
    w = jnp.asarray(rng.normal(size=(5, 3, 1)), jnp.float32)
    pred = predictive(apply, w, x, likelihoods.gaussian(noise_std=0.5))
    y = jnp.asarray(rng.normal(size=30), jnp.float32)
    out = metrics.evaluate(pred, y, y_std=2.0)
    assert set(out) == {"rmse", "nll", "gaussian_nll"}
    assert out["rmse"] == pytest.approx(2.0 * np.sqrt(np.mean((np.asarray(pred.mean) - np.asarray(y)) ** 2)), rel=1e-5)
    # classification: 5 samples of a 3 -> 4 linear model
    w = jnp.asarray(rng.normal(size=(5, 3, 4)), jnp.float32)
    pred = predictive(apply, w, x, likelihoods.categorical())
    labels = rng.integers(0, 4, size=30)
    out = metrics.evaluate(pred, labels)
    assert set(out) == {"accuracy", "nll", "ece", "brier"}
    assert all(type(v) is float for v in out.values())
    assert out["accuracy"] == pytest.approx(float(metrics.accuracy(pred, labels)))
    assert out["ece"] == pytest.approx(float(metrics.ece(pred, labels)), abs=1e-6)


# ----------------------------------------------------------------------------- OOD, agreement


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    # coarse integer-valued scores make many ties within and across groups
    s_in = rng.integers(0, 6, size=137).astype(np.float32)
    s_out = (rng.integers(0, 6, size=61) + seed).astype(np.float32)
    labels = np.r_[np.zeros(137), np.ones(61)]
    expected = roc_auc_score(labels, np.r_[s_in, s_out])
    assert float(metrics.auroc(s_in, s_out)) == pytest.approx(expected, abs=1e-6)
    # continuous scores, no ties
    s_in, s_out = rng.normal(size=300), rng.normal(0.5, 1.0, size=200)
    expected = roc_auc_score(np.r_[np.zeros(300), np.ones(200)], np.r_[s_in, s_out])
    assert float(metrics.auroc(s_in, s_out)) == pytest.approx(expected, abs=1e-6)


def test_auroc_edge_cases():
    assert float(metrics.auroc(jnp.array([0.0, 1.0]), jnp.array([2.0, 3.0]))) == 1.0
    assert float(metrics.auroc(jnp.array([2.0, 3.0]), jnp.array([0.0, 1.0]))) == 0.0
    assert float(metrics.auroc(jnp.ones(4), jnp.ones(3))) == 0.5
    assert float(metrics.auroc(jnp.array([1, 2, 3]), jnp.array([2]))) == pytest.approx(0.5)  # integer scores


def test_agreement_and_total_variation_hand_example():
    # argmax a = [0, 1, 1], argmax b = [0, 0, 1] -> agreement 2/3
    # TV rows: .5(.1+.1) = .1, .5(.15+.15) = .15, .5(.1+.1) = .1 -> mean .35/3
    a = _cls_pred([[0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])
    b = _cls_pred([[0.6, 0.4], [0.55, 0.45], [0.1, 0.9]])
    assert float(metrics.agreement(a, b)) == pytest.approx(2 / 3)
    assert float(metrics.total_variation(a, b)) == pytest.approx(0.35 / 3, abs=1e-6)
    assert float(metrics.agreement(a, a)) == 1.0
    assert float(metrics.total_variation(a, a)) == 0.0


# ----------------------------------------------------------------------------- jit, vmap, validation


def test_metrics_under_jit():
    pred, _, y = _random_cls(seed=5)
    other, _, _ = _random_cls(seed=6)

    @jax.jit
    def all_cls(pred, other, y):
        return jnp.stack([
            metrics.accuracy(pred, y), metrics.nll(pred, y), metrics.ece(pred, y), metrics.brier(pred, y),
            metrics.agreement(pred, other), metrics.total_variation(pred, other),
            metrics.auroc(pred.entropy[:100], pred.entropy[100:]),
        ])

    eager = [
        metrics.accuracy(pred, y), metrics.nll(pred, y), metrics.ece(pred, y), metrics.brier(pred, y),
        metrics.agreement(pred, other), metrics.total_variation(pred, other),
        metrics.auroc(pred.entropy[:100], pred.entropy[100:]),
    ]
    np.testing.assert_allclose(all_cls(pred, other, y), jnp.stack(eager), atol=1e-6)

    rpred, _, _, ry = _random_reg()
    all_reg = jax.jit(lambda p, y, s: jnp.stack([metrics.rmse(p, y, s), metrics.nll(p, y, s), metrics.gaussian_nll(p, y, s)]))
    eager = jnp.stack([metrics.rmse(rpred, ry, 2.5), metrics.nll(rpred, ry, 2.5), metrics.gaussian_nll(rpred, ry, 2.5)])
    np.testing.assert_allclose(all_reg(rpred, ry, 2.5), eager, rtol=1e-6)


def test_metrics_vmap_over_stacked_predictives():
    preds = [_random_cls(n=40, c=3, seed=s)[0] for s in range(3)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *preds)
    y = np.random.default_rng(0).integers(0, 3, size=40)
    got = jax.vmap(metrics.nll, in_axes=(0, None))(stacked, y)
    np.testing.assert_allclose(got, [metrics.nll(p, y) for p in preds], atol=1e-6)


def test_bad_inputs_raise():
    pred, _, y = _random_cls(n=10, c=3)
    for bad in (y[:9], y[:, None], y.astype(np.float32)):
        for fn in (metrics.accuracy, metrics.nll, metrics.ece, metrics.brier, metrics.evaluate):
            with pytest.raises(ValueError):
                fn(pred, bad)
    with pytest.raises(ValueError, match="out of range"):
        metrics.accuracy(pred, np.full(10, 3))
    with pytest.raises(ValueError):  # static shapes are checked under jit too
        jax.jit(metrics.brier)(pred, jnp.zeros(9, jnp.int32))
    with pytest.raises(ValueError):
        metrics.nll(pred, y, y_std=2.0)  # y_std is regression-only
    with pytest.raises(ValueError):
        metrics.ece(pred, y, num_bins=0)
    with pytest.raises(ValueError):
        metrics.agreement(pred, _random_cls(n=11, c=3)[0])
    with pytest.raises(TypeError):
        metrics.accuracy(_random_reg(n=10)[0], y)

    rpred, _, _, ry = _random_reg(n=10)
    for fn in (metrics.rmse, metrics.nll, metrics.gaussian_nll, metrics.evaluate):
        with pytest.raises(ValueError):
            fn(rpred, ry[:9])
        with pytest.raises(ValueError):
            fn(rpred, ry[:, None])
        with pytest.raises(ValueError):
            fn(rpred, ry, y_std=-1.0)
    with pytest.raises(ValueError):
        jax.jit(metrics.rmse)(rpred, jnp.zeros(11))

    with pytest.raises(ValueError):
        metrics.auroc(jnp.zeros((3, 2)), jnp.zeros(3))
    with pytest.raises(ValueError):
        metrics.auroc(jnp.zeros(3), jnp.zeros(0))
