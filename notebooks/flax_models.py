# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Bring your own flax model: BatchNorm, dropout, MC dropout
#
# Any flax module, linen or nnx, enters through `bj.models.from_flax`, which
# returns a `Model(init, apply)`. A module with a training mode (a
# `train: bool` argument in linen, `train()` / `eval()` in nnx) carries
# non-Bayesian state, such as BatchNorm's running statistics, and draws
# dropout masks. Build the log-joint from the **Model** (not its `apply`) and
# every method carries that state through its steps: gradients in training
# mode, statistics updated the flax way, and each sample stored as
# `bj.models.Variables(params, state)` so a test prediction uses that
# sample's own statistics.

# %%
import flax.linen as nn
import jax
import optax
from flax import nnx
from _guide import budget

import bayesjax as bj

ds = bj.data.load("digits")
data = (ds.x_train, ds.y_train)
lik = bj.likelihoods.categorical()
steps = budget(2000, 40)


class LinenNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(64)(x.reshape(len(x), -1))
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        x = nn.Dropout(0.2, deterministic=not train)(x)
        return nn.Dense(10)(x)


model = bj.models.from_flax(LinenNet())
variables = model.init(jax.random.key(0), ds.x_train[:1])       # Variables(params, state)
print(type(variables).__name__, jax.tree.map(jax.numpy.shape, variables.state))
lj = bj.log_joint(model, bj.priors.gaussian(1.0), lik, num_data=len(ds.y_train))

# %% [markdown]
# SGLD with BatchNorm: the chain's samples are `Variables`, each position
# with the running statistics of its step.

# %%
post = bj.run(jax.random.key(1), bj.sgld(lj, step_size=0.1), variables, data, num_steps=steps, batch_size=128,
              num_chains=2, burnin=steps // 2, thin=budget(50, 5), progress=False)
samples = post.sample(jax.random.key(2), 20)
print("sample state leaves:", jax.tree.map(jax.numpy.shape, samples.state)["batch_stats"]["BatchNorm_0"])
print("SGLD:", bj.metrics.evaluate(bj.predictive(model.apply, samples, ds.x_test, lik), ds.y_test))

# %% [markdown]
# A draw from an approximate posterior (SWAG, VI, Laplace) has weights no
# step visited, so the iterate's statistics do not belong to it:
# `bj.recompute_statistics` re-estimates each sample's BatchNorm statistics
# on training batches (Maddox et al. 2019's `bn_update`).

# %%
swag = bj.run(jax.random.key(3), bj.swag(lj, optax.sgd(0.05, momentum=0.9), start_step=steps // 2,
                                         collect_every=budget(50, 5)), variables, data, num_steps=steps,
              batch_size=128, progress=False)
draws = bj.recompute_statistics(model, swag.sample(jax.random.key(4), budget(20, 4)), ds.x_train,
                                jax.random.key(5), batch_size=128)
print("SWAG:", bj.metrics.evaluate(bj.predictive(model.apply, draws, ds.x_test, lik), ds.y_test))

# %% [markdown]
# ## MC dropout
#
# `bj.mc_dropout` trains like `bj.map` in training mode (a fresh mask each
# step) and samples masks at prediction time (Gal & Ghahramani 2016): each
# sample is the trained weights with its own `dropout_key`. A linen module's
# one `train` flag switches BatchNorm and dropout together, so MC dropout
# takes a linen module whose `train` switches dropout only (an nnx module
# may have both: its masks are drawn with BatchNorm on running statistics).


# %%
class DropoutNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Dense(64)(x.reshape(len(x), -1)))
        return nn.Dense(10)(nn.Dropout(0.2, deterministic=not train)(x))


dropout_model = bj.models.from_flax(DropoutNet())
dropout_lj = bj.log_joint(dropout_model, bj.priors.gaussian(1.0), lik, num_data=len(ds.y_train))
mc = bj.run(jax.random.key(6), bj.mc_dropout(dropout_lj, optax.adam(1e-3)),
            dropout_model.init(jax.random.key(0), ds.x_train[:1]), data, num_steps=steps, batch_size=128,
            progress=False)
masks = mc.sample(jax.random.key(7), budget(50, 4))
pred = bj.predictive(dropout_model.apply, masks, ds.x_test, lik)
print("MC dropout:", bj.metrics.evaluate(pred, ds.y_test), "mean mutual information",
      float(pred.mutual_information.mean()))

# %% [markdown]
# ## flax nnx
#
# An nnx module enters the same way; pass a factory `rngs -> module` so each
# chain or ensemble member gets its own initial weights (here `bj.run` gives
# each of two MAP chains its own start: a small deep ensemble).


# %%
class NnxNet(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(64, 64, rngs=rngs)
        self.norm = nnx.BatchNorm(64, momentum=0.9, rngs=rngs)
        self.dropout = nnx.Dropout(0.2, rngs=rngs)
        self.out = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(self.dropout(jax.nn.relu(self.norm(self.hidden(x.reshape(len(x), -1))))))


nnx_model = bj.models.from_flax(lambda rngs: NnxNet(rngs))
nnx_lj = bj.log_joint(nnx_model, bj.priors.gaussian(1.0), lik, num_data=len(ds.y_train))
nnx_post = bj.run(jax.random.key(8), bj.map(nnx_lj, optax.adam(1e-3)), lambda k: nnx_model.init(k, ds.x_train[:1]),
                  data, num_steps=steps, batch_size=128, num_chains=2, progress=False)   # a deep ensemble of 2
print("nnx, 2 MAP chains:", bj.metrics.evaluate(
    bj.predictive(nnx_model.apply, nnx_post.sample(jax.random.key(10), 2), ds.x_test, lik), ds.y_test))
