"""Tests for bayesjax.metrics.comparison: agreement and total variation on a hand-worked example."""
import pytest

from bayesjax import metrics
from tests.metrics.predictives import cls_pred


def test_agreement_and_total_variation_hand_example():
    # argmax a = [0, 1, 1], argmax b = [0, 0, 1] -> agreement 2/3
    # TV rows: .5(.1+.1) = .1, .5(.15+.15) = .15, .5(.1+.1) = .1 -> mean .35/3
    a = cls_pred([[0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])
    b = cls_pred([[0.6, 0.4], [0.55, 0.45], [0.1, 0.9]])
    assert float(metrics.agreement(a, b)) == pytest.approx(2 / 3)
    assert float(metrics.total_variation(a, b)) == pytest.approx(0.35 / 3, abs=1e-6)
    assert float(metrics.agreement(a, a)) == 1.0
    assert float(metrics.total_variation(a, a)) == 0.0
