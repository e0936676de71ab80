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
# # SWAG, MultiSWAG and deep ensembles
#
# Three ways to get a posterior out of ordinary SGD training, all driven by
# optax on the per-example loss $U/N$ (the mean negative log-likelihood plus
# the prior's $1/N$ share):
#
# * **SWAG** (Maddox et al. 2019): run SGD at a constant rate, collect the
#   iterates, and fit a Gaussian with a diagonal plus low-rank covariance
#   $\tfrac12(\Sigma_\text{diag} + DD^\top/(K-1))$ to them;
# * **deep ensembles** (Lakshminarayanan et al. 2017): MAP from several
#   independent initializations, the predictive their mixture;
# * **MultiSWAG** (Wilson & Izmailov 2020): an ensemble of SWAG Gaussians.
#
# `bj.ensemble` runs its members vmapped inside one `jit` (and shards them
# over devices with `mesh=`); every member gets its own keys.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np
import optax
from _guide import budget, save_figure

import bayesjax as bj

ds = bj.data.load("gap")
model = bj.models.mlp([32, 32], num_outputs=1)
noise = 0.1
lik = bj.likelihoods.gaussian(noise)
lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), lik, num_data=len(ds.y_train))
init = lambda key: model.init(key, ds.x_train[:1])  # noqa: E731
steps, members = budget(6000, 200), budget(5, 2)

# %% [markdown]
# SGD's learning rate is per example, on the mean loss. A categorical
# likelihood trains well at about 0.05 (`bayesjax compare`'s SWAG rate); a
# Gaussian likelihood of noise $\sigma$ has curvature $\sigma^{-2}$ per
# example, so the same rule gives $0.05\,\sigma^2 = 5 \cdot 10^{-4}$ here.
# SWAG collects from half-way, 20 times; the ensemble's MAP members use Adam,
# whose steps do not depend on the gradient's scale.

# %%
sgd = optax.sgd(0.05 * noise**2, momentum=0.9)
swag_args = dict(start_step=steps // 2, collect_every=max(1, steps // 40), rank=budget(20, 5))
methods = {
    "SWAG": bj.swag(lj, sgd, **swag_args),
    f"deep ensemble ({members})": bj.ensemble(bj.map(lj, optax.adam(1e-2)), members, init=init),
    f"MultiSWAG ({members})": bj.multiswag(lj, sgd, members, init=init, **swag_args),
}
posts = {name: bj.run(jax.random.key(0), algo, init(jax.random.key(1)), (ds.x_train, ds.y_train),
                      num_steps=steps, batch_size=32, progress=False)
         for name, algo in methods.items()}
for name, post in posts.items():
    pred = bj.predictive(model.apply, post.sample(jax.random.key(2), 100), ds.x_test, lik)
    print(name, {k: round(float(v), 3) for k, v in bj.metrics.evaluate(pred, ds.y_test).items()})

# %% [markdown]
# The bands: the members of an ensemble disagree in the gap, where no data
# pins them down; one SWAG Gaussian explores one basin only.

# %%
x_plot = np.linspace(-1.5, 1.5, 200)[:, None].astype(np.float32)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5), sharey=True)
for ax, (name, post) in zip(axes, posts.items()):
    pred = bj.predictive(model.apply, post.sample(jax.random.key(3), 100), x_plot, lik)
    mean, std = np.asarray(pred.mean), np.sqrt(np.asarray(pred.variance))
    ax.fill_between(x_plot[:, 0], mean - 2 * std, mean + 2 * std, alpha=0.3)
    ax.plot(x_plot[:, 0], mean)
    ax.scatter(ds.x_train[:, 0], ds.y_train, s=3, c="k")
    ax.set(title=name, ylim=(-3, 3))
fig.tight_layout()
save_figure(fig, "ensembles_predictive")

# %% [markdown]
# More members: `bootstrap=True` (Poisson example weights per member),
# `anchored=True` (each member regularized toward its own prior draw; with
# `target_noise=` on regression, randomize-then-optimize), and
# `mesh=bj.sharding.mesh(chains=...)` to put the members on several devices.
