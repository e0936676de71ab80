"""Tests for bayesjax.models.normalization: filter response normalization with TLU (Singh & Krishnan 2020)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax.models import FilterResponseNorm

KEY = jax.random.key(0)


def frn_formula(x, gamma, beta, tau, eps):
    """Eqs. 1-3 of Singh & Krishnan (2020) in float64 NumPy, spatial axes 1..ndim-2."""
    x = np.asarray(x, np.float64)
    nu2 = np.mean(x**2, axis=tuple(range(1, x.ndim - 1)), keepdims=True)
    return np.maximum(gamma * x / np.sqrt(nu2 + eps) + beta, tau)


@pytest.mark.parametrize("shape", [(3, 6, 5, 4), (2, 7, 3)])
@pytest.mark.parametrize("eps", [1e-6, 0.5])
def test_equals_its_formula_with_random_parameters(shape, eps):
    x_key, g_key, b_key, t_key = jax.random.split(KEY, 4)
    x = 3 * jax.random.normal(x_key, shape)
    c = shape[-1]
    params = {"gamma": jax.random.normal(g_key, (c,)), "beta": jax.random.normal(b_key, (c,)),
              "tau": jax.random.normal(t_key, (c,))}
    z = FilterResponseNorm(epsilon=eps).apply({"params": params}, x)
    want = frn_formula(x, *(np.asarray(params[k], np.float64) for k in ("gamma", "beta", "tau")), eps)
    assert z.shape == shape and z.dtype == jnp.float32
    np.testing.assert_allclose(z, want, rtol=1e-5, atol=1e-6)
    # TLU is active for some entries and not for others, so both branches were compared.
    assert 0 < np.mean(want == np.asarray(params["tau"], np.float64)) < 1


def test_init_is_gamma_one_beta_and_tau_zero():
    params = FilterResponseNorm().init(KEY, jnp.ones((1, 4, 4, 3)))["params"]
    assert set(params) == {"gamma", "beta", "tau"}
    np.testing.assert_array_equal(params["gamma"], np.ones(3))
    np.testing.assert_array_equal(params["beta"], np.zeros(3))
    np.testing.assert_array_equal(params["tau"], np.zeros(3))


def test_an_example_does_not_depend_on_the_rest_of_its_batch():
    layer = FilterResponseNorm()
    x = jax.random.normal(KEY, (4, 5, 5, 2))
    variables = layer.init(KEY, x)
    other = x.at[1:].set(100 * jax.random.normal(jax.random.key(1), (3, 5, 5, 2)))
    np.testing.assert_array_equal(layer.apply(variables, x)[0], layer.apply(variables, other)[0])


def test_zero_input_gives_finite_output_and_gradient():
    layer = FilterResponseNorm()
    x = jnp.zeros((2, 3, 3, 2))
    variables = layer.init(KEY, x)
    grad = jax.grad(lambda x_: layer.apply(variables, x_).sum())(x)
    assert np.all(np.isfinite(layer.apply(variables, x))) and np.all(np.isfinite(grad))


def test_rejects_inputs_without_a_spatial_axis():
    with pytest.raises(ValueError, match="spatial axis"):
        FilterResponseNorm().init(KEY, jnp.ones((4, 3)))


@pytest.mark.parametrize("eps", [0.0, -1e-6])
def test_rejects_a_non_positive_epsilon(eps):
    with pytest.raises(ValueError, match="epsilon"):
        FilterResponseNorm(epsilon=eps).init(KEY, jnp.ones((1, 4, 4, 3)))
