"""Tests for bayesjax.metrics.classification against scikit-learn, NumPy and hand-worked numbers."""
import inspect

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from bayesjax import metrics
from tests.metrics.predictives import ATOL, cls_pred, random_cls


def test_accuracy_matches_numpy():
    pred, probs, y = random_cls()
    assert float(metrics.accuracy(pred, y)) == pytest.approx(np.mean(probs.argmax(-1) == y), abs=1e-7)


def test_brier_multiclass_matches_numpy_formula():
    pred, probs, y = random_cls(c=4, seed=1)
    onehot = np.eye(4)[y]
    expected = np.mean(np.sum((probs.astype(np.float64) - onehot) ** 2, axis=-1))
    assert float(metrics.brier(pred, y)) == pytest.approx(expected, abs=ATOL)
    if "scale_by_half" in inspect.signature(brier_score_loss).parameters:  # sklearn >= 1.7: multiclass form
        sk = brier_score_loss(y, probs, labels=np.arange(4), scale_by_half=False)
        assert float(metrics.brier(pred, y)) == pytest.approx(sk, abs=ATOL)


def test_brier_binary_is_twice_sklearn():
    pred, probs, y = random_cls(c=2, seed=2)
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
    pred = cls_pred(probs)
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
    pred, _, y = random_cls(n=500, c=3, seed=3, concentration=0.3)
    probs = np.asarray(pred.probs)  # the same float32 confidences the metric bins
    assert float(metrics.ece(pred, y, num_bins)) == pytest.approx(_numpy_ece(probs, y, num_bins), abs=ATOL)


def test_ece_perfectly_calibrated_and_confident():
    # one-hot predictions that are always right: conf = acc = 1 in the last bin
    y = np.array([0, 1, 2, 1])
    pred = cls_pred(np.eye(3)[y] * (1 - 2e-7) + 1e-7)
    assert float(metrics.ece(pred, y)) == pytest.approx(0.0, abs=1e-5)
