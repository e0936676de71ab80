"""Forgetting and process noise: the filter is the forgetting recursion, helps on drift, costs little without."""
import jax
import jax.numpy as jnp
import numpy as np

import bayesjax as bj
from bayesjax.inference.online import online
from tests.helpers.linear_gaussian import D, linear_apply
from tests.helpers.numerics import rel_err
from tests.helpers.online_streams import chain, covariance_of

STEPS, B, NOISE_DRIFT, DRIFT = 40, 10, 0.3, 0.1


def drifting_regression(drift, seed=0):
    """y = x^T w_t + noise with w_t a random walk (std ``drift`` per batch), batches of B."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=D) + np.cumsum(drift * rng.normal(size=(STEPS, D)), axis=0)
    x = rng.normal(size=(STEPS, B, D))
    y = np.einsum("tbd,td->tb", x, w) + NOISE_DRIFT * rng.normal(size=(STEPS, B))
    return x.reshape(-1, D), y.reshape(-1)


def kalman_filter(x, y, process_noise, gamma):
    """The forgetting recursion in NumPy: P <- P0 + gamma (P - P0), Sigma <- Sigma + q I, then Kalman's update."""
    prior = np.eye(D)
    mean, precision = np.zeros(D), prior.copy()
    for t in range(STEPS):
        precision = prior + gamma * (precision - prior)
        precision = np.linalg.inv(np.linalg.inv(precision) + process_noise * np.eye(D))
        xt, yt = x[t * B:(t + 1) * B], y[t * B:(t + 1) * B]
        new = precision + xt.T @ xt / NOISE_DRIFT**2
        mean = np.linalg.solve(new, precision @ mean + xt.T @ yt / NOISE_DRIFT**2)
        precision = new
    return mean, precision


def test_forgetting_tracks_drift_and_costs_little_without_it():
    streams = {"drifting": drifting_regression(DRIFT), "static": drifting_regression(0.0)}
    settings = {"none": {}, "gamma=0.8": {"forgetting": 0.8}, f"q={DRIFT**2:g}": {"process_noise": DRIFT**2}}
    nll = {}
    with jax.enable_x64(True):
        lj = bj.log_joint(linear_apply, bj.priors.gaussian(1.0), bj.likelihoods.gaussian(NOISE_DRIFT),
                          num_data=STEPS * B)
        for name, options in settings.items():
            algo = online(lj, "ekf", structure="full", **options)
            for kind, (x, y) in streams.items():
                post = bj.run(jax.random.key(0), algo, {"w": jnp.zeros(D)}, (x, y), num_steps=STEPS,
                              batch_size=B, shuffle=False, progress=False)
                nll[kind, name] = -float(post.info.log_predictive.sum()) / (STEPS * B)
                # The filter is the forgetting recursion exactly.
                mean, precision = kalman_filter(x, y, options.get("process_noise", 0.0),
                                                options.get("forgetting", 1.0))
                state = chain(post.state)
                assert rel_err(state.mean["w"], mean) < 1e-10
                assert rel_err(np.linalg.inv(covariance_of(lj, state)), precision) < 1e-10
    for kind in streams:
        print(f"{kind:>9} stream, prequential NLL per example: "
              + ", ".join(f"{name} {nll[kind, name]:.3f}" for name in settings))
    for name in list(settings)[1:]:
        gain = nll["drifting", "none"] - nll["drifting", name]
        cost = nll["static", name] - nll["static", "none"]
        assert gain > 0, f"{name}: forgetting must help on the drifting stream"
        assert 0 <= cost < gain / 4, f"{name}: on a static stream forgetting costs a little, far less than it gains"
