"""Deep ensembles on the UCI regression benchmark against the published numbers (Lakshminarayanan et al. 2017).

The data come from ``../shared/data/uci`` (or ``$BAYESJAX_UCI``); without them the tests skip.

Protocol (Hernandez-Lobato & Adams 2015): the fixed 90/10 splits, inputs and targets standardized with the
training split, test NLL per point in original units. Here: splits 0-2, a 5-member ensemble of MAP networks
(1 hidden layer of 50 ReLU units, a heteroscedastic Gaussian head: mean and log-scale), each from its own
initialization and with its own minibatch order (``bj.run`` chains), 40 epochs of Adam (batch 32, learning
rate 1e-2 with cosine decay to 1e-4), prior N(0, 0.2^2) on every weight. The NLL of the ensemble's mixture,
both the moment-matched Gaussian the paper reports (``gaussian_nll``) and the exact mixture (``nll``), must be
at or below the published mean + 1 sd.
"""
import jax
import numpy as np
import optax
import pytest

import bayesjax as bj

MEMBERS, EPOCHS, BATCH, SPLITS = 5, 40, 32, (0, 1, 2)
MODEL = bj.models.mlp([50], num_outputs=2)
PUBLISHED_NLL = {  # Lakshminarayanan et al. 2017, Table 1: mean, sd over splits
    "bostonHousing": (2.41, 0.25),
    "concrete": (3.06, 0.18),
    "energy": (1.38, 0.22),
    "wine-quality-red": (0.94, 0.12),
}


def load_or_skip(name, split):
    try:
        return bj.data.load(name, split)
    except FileNotFoundError as error:
        pytest.skip(f"UCI data not found (put the sets in ../shared/data/uci or set $BAYESJAX_UCI): {error}")


def deep_ensemble_metrics(name):
    """Test metrics of splits 0-2; the run compiles once per data set (the splits share shapes)."""
    first = load_or_skip(name, SPLITS[0])
    num_data = len(first.y_train)
    num_steps = EPOCHS * (num_data // BATCH)
    lj = bj.log_joint(MODEL.apply, bj.priors.gaussian(0.2), bj.likelihoods.heteroscedastic_gaussian(),
                      num_data=num_data)
    algo = bj.map(lj, optax.adam(optax.cosine_decay_schedule(1e-2, num_steps, alpha=0.01)))
    example = first.x_train[:1]

    def init(key):
        return MODEL.init(key, example)

    results = []
    for split in SPLITS:
        ds = first if split == SPLITS[0] else load_or_skip(name, split)
        post = bj.run(jax.random.key(split), algo, init, (ds.x_train, ds.y_train), num_steps=num_steps,
                      batch_size=BATCH, num_chains=MEMBERS, progress=False)
        members = post.sample(jax.random.key(0), MEMBERS)  # one draw per chain: each member once
        pred = bj.predictive(MODEL.apply, members, ds.x_test, lj.likelihood)
        results.append(bj.metrics.evaluate(pred, ds.y_test, ds.y_std))
    return {metric: np.mean([r[metric] for r in results]) for metric in results[0]}


@pytest.mark.parametrize("name", sorted(PUBLISHED_NLL))
def test_deep_ensemble_matches_the_published_nll(name):
    mean, sd = PUBLISHED_NLL[name]
    metrics = deep_ensemble_metrics(name)
    print(f"{name}: RMSE {metrics['rmse']:.2f}, NLL {metrics['nll']:.3f} (mixture), "
          f"{metrics['gaussian_nll']:.3f} (Gaussian); published NLL {mean} +- {sd}")
    assert metrics["gaussian_nll"] <= mean + sd, metrics
    assert metrics["nll"] <= mean + sd, metrics
