"""Tests for bayesjax.convolution: equal to XLA's convolution (values, gradients, vmap), chosen per platform.

Tolerances are the float32 rounding bound of a sum of n products, evaluated
with each result's own absolute terms: ``|a - b| <= 2 n eps sum_i |t_i|``.
"""
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import bayesjax as bj
from bayesjax.convolution import conv_general_dilated, patches_conv

EPS = float(jnp.finfo(jnp.float32).eps)
NHWC = ("NHWC", "HWIO", "NHWC")

CASES = {  # x shape, kernel shape, strides, padding, keyword arguments
    "same": ((2, 9, 9, 1), (3, 3, 1, 4), (1, 1), "SAME", dict(dimension_numbers=NHWC)),
    "valid-strided": ((2, 9, 8, 3), (3, 3, 3, 5), (2, 2), "VALID", dict(dimension_numbers=NHWC)),
    "same-strided-wide": ((2, 7, 7, 8), (3, 3, 8, 16), (2, 1), "SAME", dict(dimension_numbers=NHWC)),
    "5x3-pairs-dilated": ((2, 11, 9, 2), (5, 3, 2, 3), (1, 2), ((2, 1), (0, 3)),
                          dict(dimension_numbers=NHWC, rhs_dilation=(2, 1))),
    "lhs-dilated-negative-pad": ((2, 6, 5, 2), (3, 3, 2, 3), (1, 1), ((1, -1), (2, 0)),
                                 dict(dimension_numbers=NHWC, lhs_dilation=(2, 1))),
    "grouped": ((2, 8, 8, 6), (3, 3, 2, 9), (1, 1), "SAME", dict(dimension_numbers=NHWC, feature_group_count=3)),
    "nchw-default": ((2, 3, 8, 8), (4, 3, 3, 3), (1, 1), "SAME", dict()),
    "mixed-layouts": ((2, 8, 8, 3), (3, 3, 3, 4), (1, 1), "SAME", dict(dimension_numbers=("NHWC", "OIHW", "NCHW"))),
    "1d": ((3, 12, 2), (3, 2, 4), (1,), "SAME", dict(dimension_numbers=("NWC", "WIO", "NWC"))),
}


def _inputs(case):
    x_shape, w_shape, strides, padding, kwargs = CASES[case]
    kx, kw, kr = jax.random.split(jax.random.key(list(CASES).index(case)), 3)
    return jax.random.normal(kx, x_shape), jax.random.normal(kw, w_shape), strides, padding, kwargs, kr


def _close(value, reference, abs_terms, num_terms):
    bound = 2 * num_terms * EPS * np.asarray(abs_terms) + 1e-30
    error = np.abs(np.asarray(value) - np.asarray(reference))
    assert value.shape == reference.shape
    assert np.all(error <= bound), f"max error / bound {np.max(error / bound):.3g}"


@pytest.mark.parametrize("case", CASES)
def test_outputs_equal_xla(case):
    x, w, strides, padding, kwargs, _ = _inputs(case)
    reference = lax.conv_general_dilated(x, w, strides, padding, **kwargs)
    value = jax.jit(lambda x, w: conv_general_dilated(x, w, strides, padding, **kwargs))(x, w)
    abs_terms = lax.conv_general_dilated(jnp.abs(x), jnp.abs(w), strides, padding, **kwargs)
    _close(value, reference, abs_terms, w.size)


@pytest.mark.parametrize("case", ["same", "valid-strided", "same-strided-wide", "5x3-pairs-dilated", "grouped"])
def test_gradients_equal_xla(case):
    x, w, strides, padding, kwargs, key = _inputs(case)
    shape = lax.conv_general_dilated(x, w, strides, padding, **kwargs).shape
    r = jax.random.normal(key, shape)

    def loss(conv, x, w, r):
        return jnp.sum(conv(x, w, strides, padding, **kwargs) * r)

    reference = jax.grad(loss, (1, 2))(lax.conv_general_dilated, x, w, r)
    value = jax.jit(jax.grad(loss, (1, 2)), static_argnums=0)(conv_general_dilated, x, w, r)
    abs_dx = jax.grad(loss, 1)(lax.conv_general_dilated, x, jnp.abs(w), jnp.abs(r))
    abs_dw = jax.grad(loss, 2)(lax.conv_general_dilated, jnp.abs(x), w, jnp.abs(r))
    num_terms = max(r.size, w.size)
    _close(value[0], reference[0], abs_dx, num_terms)
    _close(value[1], reference[1], abs_dw, num_terms)


def test_vmap_over_weights_as_the_sweep():
    """Cells with their own kernels (and their own batches) in one vmap equal each cell alone."""
    x, w, strides, padding, kwargs, key = _inputs("same-strided-wide")
    kernels = jnp.stack([w, -0.5 * w, jax.random.normal(key, w.shape)])
    batches = jnp.stack([x, x[::-1], 2.0 * x])

    def conv(x, w):
        return conv_general_dilated(x, w, strides, padding, **kwargs)

    shared = jax.jit(jax.vmap(conv, (None, 0)))(x, kernels)
    own = jax.jit(jax.vmap(conv))(batches, kernels)
    grads = jax.jit(jax.vmap(jax.grad(lambda w, x: jnp.sum(jnp.sin(conv(x, w))))))(kernels, batches)
    for i in range(3):
        for value, xi in ((shared[i], x), (own[i], batches[i])):
            reference = lax.conv_general_dilated(xi, kernels[i], strides, padding, **kwargs)
            abs_terms = lax.conv_general_dilated(jnp.abs(xi), jnp.abs(kernels[i]), strides, padding, **kwargs)
            _close(value, reference, abs_terms, w.size)
        reference = jax.grad(lambda w: jnp.sum(jnp.sin(lax.conv_general_dilated(batches[i], w, strides, padding,
                                                                                **kwargs))))(kernels[i])
        abs_terms = jax.grad(lambda w: jnp.sum(lax.conv_general_dilated(jnp.abs(batches[i]), w, strides, padding,
                                                                        **kwargs)))(kernels[i])
        _close(grads[i], reference, abs_terms, own[i].size)


def test_patches_conv_on_any_platform_equals_xla():
    x, w, strides, padding, kwargs, _ = _inputs("5x3-pairs-dilated")
    value = jax.jit(lambda x, w: patches_conv(x, w, strides, padding, **kwargs))(x, w)
    abs_terms = lax.conv_general_dilated(jnp.abs(x), jnp.abs(w), strides, padding, **kwargs)
    _close(value, lax.conv_general_dilated(x, w, strides, padding, **kwargs), abs_terms, w.size)


def test_batch_groups_use_xla():
    x = jax.random.normal(jax.random.key(0), (4, 6, 6, 2))
    w = jax.random.normal(jax.random.key(1), (3, 3, 2, 4))
    args = (x, w, (1, 1), "SAME")
    np.testing.assert_array_equal(conv_general_dilated(*args, dimension_numbers=NHWC, batch_group_count=2),
                                  lax.conv_general_dilated(*args, dimension_numbers=NHWC, batch_group_count=2))


def _opcodes(hlo_text):
    return set(re.findall(r"= \S+ ([a-z][\w-]*)\(", hlo_text))


def test_platform_chosen_at_lowering():
    """On the CPU the compiled step holds matrix products and no convolution or conditional; lowered
    for a GPU, XLA's convolution."""
    x = jnp.ones((2, 8, 8, 3))
    w = jnp.ones((3, 3, 3, 4))

    def loss(x, w):
        return jnp.sum(jnp.sin(conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC)))

    step = jax.jit(jax.value_and_grad(loss, (0, 1)))
    cpu = _opcodes(step.lower(x, w).compile().as_text())
    assert "dot" in cpu and not {"convolution", "conditional", "custom-call"} & cpu
    gpu = step.trace(x, w).lower(lowering_platforms=("cuda",)).as_text()
    assert "stablehlo.convolution" in gpu and "stablehlo.dot_general" not in gpu


def test_linen_conv_equals_flax_conv():
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 4))
    fields = dict(features=6, kernel_size=(3, 2), strides=(2, 1), padding="VALID", feature_group_count=2)
    variables = nn.Conv(**fields).init(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, bj.models.Conv(**fields).init(jax.random.key(1), x)) == \
        jax.tree.map(jnp.shape, variables)
    np.testing.assert_allclose(bj.models.Conv(**fields).apply(variables, x), nn.Conv(**fields).apply(variables, x),
                               atol=1e-5)


def test_nnx_conv_takes_the_function():
    nnx = pytest.importorskip("flax.nnx")
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
    fast = nnx.Conv(3, 5, (3, 3), conv_general_dilated=conv_general_dilated, rngs=nnx.Rngs(0))
    plain = nnx.Conv(3, 5, (3, 3), rngs=nnx.Rngs(0))
    np.testing.assert_allclose(fast(x), plain(x), atol=1e-5)
