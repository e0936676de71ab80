"""Models as pairs of pure functions.

A :class:`Model` is ``init(key, x_example) -> params`` and
``apply(params, x) -> outputs``, where ``params`` is a plain nested ``dict`` of
arrays (no flax ``FrozenDict``, no ``{"params": ...}`` wrapper) so priors,
samplers and optimizers see the weights directly. ``apply`` is pure: it jits,
and it vmaps over a leading sample axis of stacked parameters::

    model = bj.models.mlp([50, 50], num_outputs=10)
    params = model.init(key, x[:1])
    outputs = jax.vmap(model.apply, (0, None))(samples, x)   # [S, B, 10]

Convolutions run through :func:`bayesjax.convolution.conv_general_dilated`
(patches times a matrix on the CPU, XLA's convolution elsewhere); use
:class:`Conv` in place of ``flax.linen.Conv`` to give a model of your own the
same (``flax.nnx.Conv`` takes the function as ``conv_general_dilated=``).

``apply`` checks, at trace time and so at no run-time cost under ``jit``, that
the parameters have the structure and shapes the model expects for ``x``; a
mismatch raises a ``ValueError`` that names the offending leaf.
"""
from bayesjax.models.layers import POOLS, Conv, avg_pool_2x2, max_pool_2x2
from bayesjax.models.flax_adapter import from_flax
from bayesjax.models.linen import from_linen
from bayesjax.models.model import Model, ModelState, Variables
from bayesjax.models.nnx import from_nnx
from bayesjax.models.networks import cnn, fortuin_cnn, mlp
from bayesjax.models.normalization import FilterResponseNorm
from bayesjax.models.resnet import resnet20

__all__ = ["POOLS", "Conv", "FilterResponseNorm", "Model", "ModelState", "Variables", "avg_pool_2x2", "cnn", "fortuin_cnn", "from_flax", "from_linen", "from_nnx", "max_pool_2x2", "mlp", "resnet20"]
