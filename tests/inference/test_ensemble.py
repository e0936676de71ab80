"""Ensembles in one jit: the same members as separate runs, MultiSWAG's pool, bootstrap, anchors, sharding."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from bayesjax.inference import ensemble, swag
from tests.helpers import linear_problem
from tests.helpers.linear_problem import NOISE, PRIOR, D

build_ensemble = getattr(bj, "ensemble", ensemble.build)
build_multiswag = getattr(bj, "multiswag", ensemble.build_multiswag)
build_swag = getattr(bj, "swag", swag.build_swag)

MODEL = bj.models.mlp([16], num_outputs=2)
NUM_STEPS, BATCH = 30, 16


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (np.sin(x @ np.array([1.0, -1.0, 0.5])) + 0.1 * rng.normal(size=64)).astype(np.float32)
    lj = bj.log_joint(MODEL.apply, bj.priors.gaussian(1.0), bj.likelihoods.heteroscedastic_gaussian(), num_data=64)
    return lj, (x, y)


def init_member(key):
    return MODEL.init(key, jnp.zeros((1, 3)))


def batches(data, num_steps):
    x, y = data
    index = np.stack([np.random.default_rng(t).permutation(len(x))[:BATCH] for t in range(num_steps)])
    return jnp.asarray(x[index]), jnp.asarray(y[index])


@functools.partial(jax.jit, static_argnums=0)
def train(algo, key, params, xs, ys):
    init_key, step_key = jax.random.split(key)
    state = algo.init(init_key, params)

    def body(state, t):
        return algo.step(jax.random.fold_in(step_key, t), state, (xs[t], ys[t]))[0], None

    return jax.lax.scan(body, state, jnp.arange(xs.shape[0]))[0]


def swag_member(lj):
    return build_swag(lj, optax.adam(1e-2), start_step=10, collect_every=2, rank=4)


def multiswag(lj, mesh=None):
    """bj.multiswag is bj.ensemble(bj.swag(...)): the same members as swag_member."""
    return build_multiswag(lj, optax.adam(1e-2), 3, init=init_member, start_step=10, collect_every=2, rank=4,
                           mesh=mesh)


@pytest.fixture(scope="module")
def swag_ensemble(regression):
    """A 3-member MultiSWAG (members carry an optimizer, moments and a deviation buffer) trained in one jit."""
    lj, data = regression
    algo = multiswag(lj)
    xs, ys = batches(data, NUM_STEPS)
    key = jax.random.key(0)
    return lj, (xs, ys), train(algo, key, init_member(key), xs, ys)


def test_one_jit_gives_the_members_of_separate_runs(swag_ensemble):
    lj, (xs, ys), state = swag_ensemble
    algo, num_members = swag_member(lj), 3
    # Member m alone: its keys are fold_in(key, m) of the ensemble's keys.
    init_key, step_key = jax.random.split(jax.random.key(0))

    @jax.jit
    def alone(m):
        member_init, member_params, _ = jax.random.split(jax.random.fold_in(init_key, m), 3)
        state = algo.init(member_init, init_member(member_params))

        def body(state, t):
            k = jax.random.fold_in(jax.random.fold_in(step_key, t), m)
            return algo.step(k, state, (xs[t], ys[t]))[0], None

        return jax.lax.scan(body, state, jnp.arange(NUM_STEPS))[0]

    for m in range(num_members):
        single = alone(m)
        for a, b in zip(jax.tree.leaves(jax.tree.map(lambda leaf: leaf[m], state.members)), jax.tree.leaves(single)):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert int(single.num_collected) == 10
    kernels = np.asarray(state.members.params["Dense_0"]["kernel"])
    assert min(np.abs(kernels[i] - kernels[j]).max() for i in range(3) for j in range(i)) > 1e-2  # members differ


def test_multiswag_draws_from_every_members_gaussian(swag_ensemble):
    lj, (xs, _), state = swag_ensemble
    num_members = 3
    means = np.asarray(state.members.mean["Dense_0"]["kernel"]).reshape(num_members, -1)
    samples = jax.jit(multiswag(lj).sample, static_argnums=2)(jax.random.key(2), state, 30)
    draws = np.asarray(samples["Dense_0"]["kernel"]).reshape(30, -1)
    nearest = np.argmin(((draws[:, None] - means[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(np.bincount(nearest, minlength=num_members), [10] * num_members)
    assert len(np.unique(draws[:, 0])) == 30  # Gaussian draws, not copies of the means
    spread = [np.abs(draws[nearest == m] - means[m]).max() for m in range(num_members)]
    gaps = [np.abs(means[i] - means[j]).max() for i in range(num_members) for j in range(i)]
    assert 0 < max(spread) < min(gaps)  # each draw stays near its own member
    pred = bj.predictive(MODEL.apply, samples, xs[0], lj.likelihood)  # the pool feeds the predictive unchanged
    assert pred.component_mean.shape == (30, BATCH) and np.all(np.isfinite(pred.log_prob(jnp.zeros(BATCH))))


# --------------------------------------------------------------------------- #
# Bootstrap weights and anchored members
# --------------------------------------------------------------------------- #
def test_bootstrap_weights_are_fixed_per_example_and_member():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 3)).astype(np.float32)
    y = rng.integers(0, 3, size=20_000).astype(np.int32)
    ids = jax.jit(ensemble.example_ids)((x, y))
    assert len(np.unique(np.asarray(ids))) == 20_000
    reordered = jax.jit(ensemble.example_ids)((x[::-1], y[::-1]))
    np.testing.assert_array_equal(reordered, ids[::-1])  # an example's id does not depend on its batch
    key = jax.random.key(0)
    poisson = np.asarray(ensemble.bootstrap_weights(key, ids))
    n = len(poisson)
    assert abs(poisson.mean() - 1) < 4 / np.sqrt(n)  # Poisson(1): mean 1, variance 1
    assert abs(np.mean(poisson == 0) - np.exp(-1)) < 4 * np.sqrt(np.exp(-1) * (1 - np.exp(-1)) / n)
    assert abs(poisson.var() - 1) < 4 * np.sqrt(3 / n)  # Var(sample variance) ~ (mu4 - 1) / n, mu4 = 4 (Poisson(1))
    bayesian = np.asarray(ensemble.bootstrap_weights(key, ids, "bayesian"))
    assert abs(bayesian.mean() - 1) < 4 / np.sqrt(n) and bayesian.min() > 0
    other = np.asarray(ensemble.bootstrap_weights(jax.random.key(1), ids))
    assert abs(np.corrcoef(poisson, other)[0, 1]) < 4 / np.sqrt(n)  # members draw independently
    # Every input dtype hashes, and a change in any feature changes the id.
    for leaf in (x[:50].astype(np.float16), rng.normal(size=(50, 20)) > 0):  # 2-byte and boolean inputs hash too
        assert len(np.unique(jax.jit(ensemble.example_ids)((leaf, y[:50])))) == 50
    x2 = x[:100].copy()
    x2[:, 2] += 1e-3
    assert np.all(np.asarray(jax.jit(ensemble.example_ids)((x2, y[:100]))) != np.asarray(ids[:100]))


N = 50


@pytest.fixture(scope="module")
def linear():
    return linear_problem.data(N)


def linear_log_joint():
    return linear_problem.log_joint(N)


def gradient_descent(lj, decay_steps=None):
    # The per-example loss's Hessian is (X^T X / NOISE^2 + I / PRIOR^2) / N, eigenvalues 2.7-5.2 here. On
    # minibatches the rate decays (to 1e-4 of its start) so that SGD converges to the optimum instead of
    # hovering around it.
    rate = 0.075 if decay_steps is None else optax.exponential_decay(0.075, decay_steps, 1e-4)
    return bj.map(lj, optax.sgd(rate))


def test_bootstrap_members_fit_their_own_weighted_data(linear):
    """With minibatches, each member converges to the ridge fit of its fixed example weights."""
    x, y = linear
    with jax.enable_x64(True):
        algo = build_ensemble(gradient_descent(linear_log_joint(), decay_steps=2000), 3, bootstrap=True)
        post = bj.run(jax.random.key(0), algo, {"w": jnp.zeros(D)}, (x, y), num_steps=2000, batch_size=25,
                      progress=False)
        state = jax.tree.map(lambda leaf: leaf[0], post.state)
        weights = np.asarray(ensemble.member_weights(state, (jnp.asarray(x), jnp.asarray(y))))
        for m, w in enumerate(weights):
            precision = (x.T * w) @ x / NOISE**2 + np.eye(D) / PRIOR**2
            ridge = np.linalg.solve(precision, (x.T * w) @ y / NOISE**2)
            np.testing.assert_allclose(state.members.params["w"][m], ridge, rtol=1e-3, atol=1e-3)
        assert not np.allclose(weights[0], weights[1]) and np.any(weights == 0)  # members leave different examples out


NUM_MEMBERS = 2000


ANCHOR_SCALE = 2.0


@pytest.mark.parametrize("anchored,target_noise", [(True, None), (True, NOISE), ("wide", None)])
def test_anchored_members_on_bayesian_linear_regression(linear, anchored, target_noise):
    """Anchored MAP members are exact on a linear-Gaussian model: member m solves
    theta_m = Sigma_post (X^T (y + eps_m) / NOISE^2 + anchor_m / PRIOR^2), so with target noise eps_m ~ N(0, NOISE^2)
    and prior anchors (randomize-then-optimize) the members are posterior samples; without target noise their
    covariance is Sigma_post Cov(anchor) Sigma_post / PRIOR^4. Checked within 3 Monte Carlo SEs of NUM_MEMBERS iid
    members."""
    x, y = linear
    anchor_scale = ANCHOR_SCALE if anchored == "wide" else PRIOR
    with jax.enable_x64(True):
        anchors = bj.priors.gaussian(ANCHOR_SCALE) if anchored == "wide" else True
        algo = build_ensemble(gradient_descent(linear_log_joint()), NUM_MEMBERS, anchored=anchors,
                              target_noise=target_noise)
        post = bj.run(jax.random.key(0), algo, {"w": jnp.zeros(D)}, (x, y), num_steps=300, progress=False)
        members = np.asarray(post.state.members.params["w"][0])
        mean, cov = (np.asarray(a) for a in bj.linear.posterior(x, y, NOISE, PRIOR))
        if target_noise is None:
            cov = cov @ cov * anchor_scale**2 / PRIOR**4
    var = np.diag(cov)
    z_mean = (members.mean(0) - mean) / np.sqrt(var / NUM_MEMBERS)
    z_cov = (np.cov(members.T) - cov) / np.sqrt((np.outer(var, var) + cov**2) / NUM_MEMBERS)
    assert np.all(np.abs(z_mean) < 3) and np.all(np.abs(z_cov) < 3), (z_mean, z_cov)


def test_anchored_members_start_at_their_prior_draws_and_sample_each_member_once(regression):
    lj, _ = regression
    algo = build_ensemble(bj.map(lj, optax.adam(1e-2)), 4, anchored=True)
    state = jax.jit(algo.init)(jax.random.key(0), init_member(jax.random.key(0)))
    np.testing.assert_array_equal(state.members.params["Dense_0"]["kernel"], state.anchors["Dense_0"]["kernel"])
    kernels = np.asarray(state.anchors["Dense_0"]["kernel"])
    assert 0.8 < kernels.std() < 1.2  # drawn from the N(0, 1) prior
    members = {tuple(k.ravel()) for k in kernels}
    assert len(members) == 4
    sample = jax.jit(algo.sample, static_argnums=2)
    once = np.asarray(sample(jax.random.key(1), state, 4)["Dense_0"]["kernel"]).reshape(4, -1)
    assert {tuple(k) for k in once} == members  # n == M: each member exactly once


# --------------------------------------------------------------------------- #
# Sharding members over devices, bad input
# --------------------------------------------------------------------------- #
def test_members_sharded_over_devices_give_the_same_ensemble(swag_ensemble):
    lj, (xs, ys), plain = swag_ensemble
    devices = jax.devices()
    if len(devices) < 3:
        pytest.skip("needs 3 devices (the test session forces 4 CPU devices)")
    mesh = jax.sharding.Mesh(np.asarray(devices[:3]).reshape(3, 1), ("chains", "data"))
    key = jax.random.key(0)
    sharded = train(multiswag(lj, mesh), key, init_member(key), xs, ys)
    for leaf in jax.tree.leaves(sharded):
        assert leaf.sharding.spec[0] == "chains" and len(leaf.sharding.device_set) == 3
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(sharded)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_ensemble_rejects_bad_input(regression):
    lj, _ = regression
    member = bj.map(lj, optax.adam(1e-2))
    with pytest.raises(ValueError, match="num_members"):
        build_ensemble(member, 0)
    with pytest.raises(ValueError, match="bootstrap"):
        build_ensemble(member, 2, bootstrap="jackknife")
    with pytest.raises(ValueError, match="target_noise needs a regression"):
        classifier = bj.log_joint(MODEL.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=64)
        build_ensemble(bj.map(classifier, optax.adam(1e-2)), 2, target_noise=0.1)
    with pytest.raises(ValueError, match="target_noise"):
        build_ensemble(member, 2, target_noise=-1.0)
    hand_made = bj.Algorithm(member.init, lambda key, state, batch: member.step(key, state, batch), member.sample)
    with pytest.raises(ValueError, match="re-bind"):
        build_ensemble(hand_made, 2, anchored=True)
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("chains",))
    if len(jax.devices()) >= 2:
        mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:2]), ("chains",))
        with pytest.raises(ValueError, match="multiple"):
            build_ensemble(member, 3, init=init_member, mesh=mesh)
