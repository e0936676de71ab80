"""Bad input gets a clear error naming the problem (TypeError for a non-key), before anything compiles."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from bayesjax.checks import check_data

MODEL = bj.models.mlp([4], num_outputs=3)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=30).astype(np.int32)
    params = MODEL.init(jax.random.key(0), x[:1])
    return x, y, params


def make_algo(num_data=30):
    lj = bj.log_joint(MODEL.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=num_data)
    return bj.map(lj, optax.sgd(0.3))


def run(params, data, compiled, **kw):
    algo = make_algo(kw.pop("num_data", 30))
    algo = algo._replace(step=_counting(algo.step, compiled))
    return bj.run(jax.random.key(0), algo, params, data, num_steps=kw.pop("num_steps", 2), progress=False, **kw)


def _counting(step, compiled):
    def counted(*args, **kwargs):
        compiled.append(1)
        return step(*args, **kwargs)
    return counted


@pytest.mark.parametrize("temperature", [0.0, -0.5])
def test_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        bj.log_joint(MODEL.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), 10, temperature=temperature)


def test_nan_in_data(setup):
    x, y, params = setup
    x = x.copy()
    x[3, 1] = np.nan
    compiled = []
    with pytest.raises(ValueError, match="non-finite"):
        run(params, (x, y), compiled)
    assert not compiled


def test_device_arrays_are_checked_where_they_live(setup):
    x, y, params = setup
    on_device = jax.device_put(x)
    checked, _ = check_data((on_device, y))
    assert checked is on_device  # not copied through the host
    compiled = []
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        run(params, (on_device.at[3, 1].set(jnp.nan), y), compiled)
    assert not compiled


def test_labels_out_of_range(setup):
    x, y, params = setup
    y = y.copy()
    y[0] = 3
    compiled = []
    with pytest.raises(ValueError, match="labels out of range"):
        run(params, (x, y), compiled)
    assert not compiled


def test_param_shape_mismatch(setup):
    x, y, params = setup
    wrong = jax.tree.map(lambda p: p, params)
    wrong["Dense_0"]["kernel"] = jnp.zeros((6, 4))
    compiled = []
    with pytest.raises(ValueError, match="kernel"):
        run(wrong, (x, y), compiled)
    assert not compiled


def test_batch_larger_than_data(setup):
    x, y, params = setup
    compiled = []
    with pytest.raises(ValueError, match="batch_size"):
        run(params, (x, y), compiled, batch_size=31)
    assert not compiled


def test_empty_data(setup):
    _, _, params = setup
    compiled = []
    with pytest.raises(ValueError, match="empty"):
        run(params, (np.zeros((0, 5), np.float32), np.zeros((0,), np.int32)), compiled)
    assert not compiled


def test_x_y_length_mismatch(setup):
    x, y, params = setup
    with pytest.raises(ValueError, match="disagree"):
        run(params, (x, y[:-1]), [])


def test_num_data_mismatch(setup):
    x, y, params = setup
    with pytest.raises(ValueError, match="num_data"):
        run(params, (x, y), [], num_data=100)


def test_float_labels_for_classification(setup):
    x, y, params = setup
    with pytest.raises(ValueError, match="integer labels"):
        run(params, (x, y.astype(np.float32)), [])


def test_bad_run_arguments(setup):
    x, y, params = setup
    for kwargs, word in [({"num_steps": 0}, "num_steps"), ({"num_chains": 0}, "num_chains"), ({"thin": 0}, "thin")]:
        with pytest.raises(ValueError, match=word):
            run(params, (x, y), [], **kwargs)


@pytest.mark.parametrize("key, words", [(0, "jax.random.key"), (np.zeros(2, np.int32), "jax.random.key"),
                                         (jax.random.split(jax.random.key(0), 2), "one PRNG key")])
def test_a_key_that_is_not_one_prng_key_is_refused(setup, key, words):
    x, y, params = setup
    with pytest.raises(TypeError, match=words):
        bj.run(key, make_algo(), params, (x, y), num_steps=2, progress=False)
    post = bj.run(jax.random.PRNGKey(0), make_algo(), params, (x, y), num_steps=2, progress=False)  # legacy keys work
    with pytest.raises(TypeError, match=words):
        post.sample(key, 2)
    laplace = bj.laplace(make_algo().log_joint, params, (x, y), hessian="diag")
    with pytest.raises(TypeError, match=words):
        laplace.sample(key, 2)


def test_a_chain_that_would_keep_no_sample_is_refused(setup):
    x, y, params = setup
    lj = bj.log_joint(MODEL.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=len(y))
    with pytest.raises(ValueError, match="no position would be kept"):  # first kept step: 20 + 50 > 40
        bj.run(jax.random.key(0), bj.sgld(lj, 0.03), params, (x, y), num_steps=40, burnin=20, thin=50,
               progress=False)


def test_valid_input_does_run(setup):
    x, y, params = setup
    compiled = []
    run(params, (x, y), compiled)
    assert compiled  # the harness above would notice a compile


# Issue 19, items 2 and 6: each reproduction, now a clear error before compiling (one line per case).
def _lj(temperature=1.0, likelihood=None):
    return bj.log_joint(MODEL.apply, bj.priors.gaussian(1.0), likelihood or bj.likelihoods.categorical(), 30,
                        temperature=temperature)


def _with(params, path, fn):
    params = jax.tree.map(lambda p: p, params)
    params["Dense_0"][path] = fn(params["Dense_0"][path])
    return params


def _samples(params, n=2):
    return jax.tree.map(lambda p: jnp.stack([p] * n), params)


BAD_INPUTS = [  # (case, call(x, y, params), exception, message)
    ("temperature array", lambda x, y, p: _lj(temperature=jnp.ones(3)), ValueError, "temperature must be a scalar"),
    ("object-dtype x", lambda x, y, p: run(p, (np.array([[1.0]] * 29 + [["a"]], dtype=object), y), []),
     ValueError, "data x has dtype object"),
    ("integer params", lambda x, y, p: run(_with(p, "kernel", lambda k: k.astype(jnp.int32)), (x, y), []),
     ValueError, r"params\['Dense_0'\]\['kernel'\] has dtype int32: parameters must be floating"),
    ("NaN params", lambda x, y, p: run(_with(p, "bias", lambda b: b.at[0].set(jnp.nan)), (x, y), []),
     ValueError, r"params\['Dense_0'\]\['bias'\] contains 1 non-finite"),
    ("inf params to SGLD", lambda x, y, p: bj.run(jax.random.key(0), bj.sgld(_lj(), 0.1),
                                                  _with(p, "kernel", lambda k: k.at[0, 0].set(jnp.inf)), (x, y),
                                                  num_steps=2, progress=False), ValueError, "non-finite"),
    ("NaN inputs to predictive", lambda x, y, p: bj.predictive(MODEL.apply, _samples(p), np.where(x > 2, np.nan, x),
                                                               bj.likelihoods.categorical()), ValueError, "non-finite"),
    ("one parameter set to predictive", lambda x, y, p: bj.predictive(MODEL.apply, p, x, bj.likelihoods.categorical()),
     ValueError, "leading sample axis: pass post.sample"),
    ("Gaussian likelihood on a classifier", lambda x, y, p: bj.predictive(MODEL.apply, _samples(p), x,
                                                                          bj.likelihoods.gaussian()),
     ValueError, "gaussian likelihood reads 1 model output"),
    ("optimizer as SGLD step size", lambda x, y, p: bj.sgld(_lj(), optax.adam(1e-3)), TypeError,
     "step_size must be a learning rate per example.*bj.map"),
    ("optimizer as SGHMC step size", lambda x, y, p: bj.sghmc(_lj(), optax.sgd(1e-3)), TypeError, "optax schedule"),
    ("mesh without a chains axis", lambda x, y, p: run(p, (x, y), [], mesh=jax.sharding.Mesh(
        np.asarray(jax.devices()[:2]), ("members",))), ValueError, "axis named 'chains'"),
]


@pytest.mark.parametrize("call, error, match", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_refused_before_compiling(setup, call, error, match):
    x, y, params = setup
    with pytest.raises(error, match=match):
        call(x, y, params)


def test_regression_metrics_of_class_labels_warn(setup):
    x, y, params = setup
    pred = bj.predictive(lambda p, x: MODEL.apply(p, x)[:, :1], _samples(params), x, bj.likelihoods.gaussian())
    with pytest.warns(UserWarning, match="integer targets"):
        bj.metrics.evaluate(pred, y)


def test_laplace_far_from_a_mode_warns(setup):
    x, y, params = setup
    lj = _lj()
    with pytest.warns(UserWarning, match="not at a mode"):
        bj.laplace(lj, params, (x, y), hessian="diag")  # the random initialization
    fit = bj.run(jax.random.key(1), bj.map(lj, optax.adam(1e-2)), params, (x, y), num_steps=2000, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bj.laplace(lj, jax.tree.map(lambda a: a[0], fit.state.params), (x, y), hessian="diag")
