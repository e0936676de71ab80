"""Every Algorithm the package exports, built on one small problem, for the shared battery.

Each later method adds one entry to ``BUILDERS``.
"""
import jax
import numpy as np
import optax

import bayesjax as bj

MODEL = bj.models.mlp([8], num_outputs=3)
DROPOUT_MODEL = bj.models.mlp([8], num_outputs=3, dropout=0.2)
"""The same weights in a network that drops units in training: a model with a training mode."""


def with_dropout(lj: bj.LogJoint) -> bj.LogJoint:
    """The same target, its network in training mode dropping units (the method carries the model's mode)."""
    return bj.log_joint(DROPOUT_MODEL, lj.prior, lj.likelihood, lj.num_data, lj.temperature, lj.tempering)


def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=32).astype(np.int32)
    params = MODEL.init(jax.random.key(0), x[:1])
    lj = bj.log_joint(MODEL.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=32,
                      temperature=0.5)
    return lj, params, (x, y)


BUILDERS = {
    "map_sgd": lambda lj: bj.map(lj, optax.sgd(0.5)),
    "map_adam": lambda lj: bj.map(lj, optax.adam(1e-3)),
    "sgld": lambda lj: bj.sgld(lj, 3e-3),
    "psgld": lambda lj: bj.sgld(lj, 3e-3, preconditioned=True),
    "sgld_schedule": lambda lj: bj.sgld(lj, optax.exponential_decay(3e-3, 10, 0.5)),
    "sghmc": lambda lj: bj.sghmc(lj, 3e-3, friction=0.1),
    "cyclical_sgld": lambda lj: bj.cyclical_sgld(lj, 3e-3, num_cycles=2, num_steps=8),
    "cyclical_sghmc": lambda lj: bj.cyclical_sgld(lj, 3e-3, num_cycles=2, num_steps=8, friction=0.1),
    "hmc": lambda lj: bj.hmc(lj, step_size=0.05, num_integration_steps=5, num_adaptation_steps=2),
    "nuts": lambda lj: bj.nuts(lj, step_size=0.05, max_num_doublings=4, num_adaptation_steps=2),
    "laplace_diag": lambda lj: bj.streaming_laplace(lj, hessian="diag"),
    "laplace_kfac": lambda lj: bj.streaming_laplace(lj, hessian="kfac"),
    "meanfield_vi_local": lambda lj: bj.meanfield_vi(lj, optax.adam(1e-2), num_mc_samples=2,
                                                     local_reparametrization=True,
                                                     kl_weight=optax.linear_schedule(0.1, 1.0, 4)),
    "fullrank_vi": lambda lj: bj.fullrank_vi(lj, optax.adam(1e-2)),
    "swa": lambda lj: bj.swa(lj, optax.sgd(0.5), start_step=1),
    "swag": lambda lj: bj.swag(lj, optax.sgd(0.5), rank=2),
    "multiswag": lambda lj: bj.multiswag(lj, optax.sgd(0.5), 2,
                                         init=lambda k: MODEL.init(k, np.zeros((1, 4), np.float32)), rank=2),
    "online_ekf": lambda lj: bj.online(lj, "ekf", process_noise=1e-4),
    "online_ekf_full": lambda lj: bj.online(lj, "ekf", structure="full", forgetting=0.9),
    "online_laplace_diag": lambda lj: bj.online(lj, "laplace_diag", optimizer=optax.adam(1e-2), num_inner_steps=3,
                                                process_noise=1e-4),
    "online_laplace_kfac": lambda lj: bj.online(lj, "laplace_kfac", forgetting=0.95, predictive="mc",
                                                num_predictive_samples=4),
    "vmap_chains_buffered_sgld": lambda lj: bj.vmap_chains(bj.with_sample_buffer(bj.sgld(lj, 3e-3), 4), 2),
    "mc_dropout": lambda lj: bj.mc_dropout(with_dropout(lj), optax.adam(1e-3)),
    "sgld_dropout": lambda lj: bj.sgld(with_dropout(lj), 3e-3),
    "online_vi": lambda lj: bj.online(lj, "vi", optimizer=optax.adam(1e-2), num_inner_steps=3, num_mc_samples=2,
                                      likelihood_weight=lambda t: 1.0 / (1.0 + t)),
}
FULL_BATCH = {"hmc", "nuts"}
"""Full-batch methods: the battery feeds them all examples."""
USER_LOOP_ONLY = {"vmap_chains_buffered_sgld"}
"""Wrappers for loops a user writes, which ``bj.run`` refuses (it vmaps chains itself)."""
