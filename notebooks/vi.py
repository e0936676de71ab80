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
# # Variational inference
#
# VI fits a Gaussian $q$ by stochastic gradient ascent on the tempered ELBO,
# estimated on each minibatch with reparametrized draws:
#
# $$\text{ELBO}_T(q) = \mathbb E_q[\text{log\_joint}(\theta, D)] + H[q]
#   = \tfrac1T \mathbb E_q[\log p(D \mid \theta)] + c_\text{prior}\,\mathbb E_q[\log p(\theta)] + H[q],$$
#
# with $c_\text{prior} = 1/T$ (posterior tempering) or 1 (likelihood
# tempering). The families: mean field (`bj.meanfield_vi`, Bayes by
# Backprop), low rank plus diagonal (`bj.lowrank_vi`) and full rank
# (`bj.fullrank_vi`, small models). The optax optimizer meets the per-example
# negative ELBO $-T\,\text{ELBO}_T / N$, the scale of MAP's loss, so
# `optax.adam(1e-3)` means the same at every data size and temperature.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np
import optax
from _guide import budget, save_figure

import bayesjax as bj

ds = bj.data.load("gap")
model = bj.models.mlp([32, 32], num_outputs=1)
lik = bj.likelihoods.gaussian(0.1)
lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), lik, num_data=len(ds.y_train))
params = model.init(jax.random.key(0), ds.x_train[:1])
steps = budget(20_000, 300)

# %% [markdown]
# Two families on the same target, Adam at 3e-3 (at 1e-2 the low-rank
# factor's steps were unstable here), one reparametrized draw per step
# (`num_mc_samples=1`, the default). `info_every` keeps every 50th step's
# ELBO terms (and skips computing the others).

# %%
methods = {
    "mean field": bj.meanfield_vi(lj, optax.adam(3e-3)),
    "low rank (r = 5) + diagonal": bj.lowrank_vi(lj, optax.adam(3e-3), rank=5),
}
posts = {name: bj.run(jax.random.key(1), algo, params, (ds.x_train, ds.y_train), num_steps=steps,
                      batch_size=64, info_every=budget(50, 10), progress=False)
         for name, algo in methods.items()}
for name, post in posts.items():
    info = post.info
    print(f"{name}: ELBO {float(info.elbo[-1, 0]):.1f} = E[log lik] {float(info.expected_log_likelihood[-1, 0]):.1f}"
          f" - KL {float(info.kl[-1, 0]):.1f} (last kept step, minibatch estimates)")

# %% [markdown]
# `post.sample` draws from $q$; the predictive averages over the draws. The
# state holds $q$ itself: the mean-field scales are `softplus(rho)`.

# %%
scales = jax.nn.softplus(posts["mean field"].state.rho["Dense_0"]["kernel"])
print("first-layer posterior std: median", float(np.median(scales)), "max", float(scales.max()))

x_plot = np.linspace(-1.5, 1.5, 200)[:, None].astype(np.float32)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
for ax, (name, post) in zip(axes, posts.items()):
    pred = bj.predictive(model.apply, post.sample(jax.random.key(2), 100), x_plot, lik)
    mean, std = np.asarray(pred.mean), np.sqrt(np.asarray(pred.variance))
    ax.fill_between(x_plot[:, 0], mean - 2 * std, mean + 2 * std, alpha=0.3)
    ax.plot(x_plot[:, 0], mean)
    ax.scatter(ds.x_train[:, 0], ds.y_train, s=3, c="k")
    ax.set(title=name, ylim=(-3, 3))
    axes[2].plot(np.asarray(post.info.elbo[:, 0]), label=name, lw=0.8)
later = np.concatenate([np.asarray(post.info.elbo[len(post.info.elbo) // 4:, 0]) for post in posts.values()])
axes[2].set(title="ELBO (minibatch estimate)", xlabel=f"step / {budget(50, 10)}",
            ylim=(np.percentile(later, 2), later.max() + 0.1 * np.ptp(later)))
axes[2].legend()
fig.tight_layout()
save_figure(fig, "vi_predictive")

# %% [markdown]
# Mean-field VI is known to underfit in-between uncertainty (Foong et al.
# 2019): compare its band in the gap with HMC's in the samplers guide.
# Options worth knowing: `local_reparametrization=True` (mean field, flax
# `Dense` layers: lower-variance gradients), `kl_weight` (KL annealing, a
# constant or a schedule), `init_scale` (q's starting width).
