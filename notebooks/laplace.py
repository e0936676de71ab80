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
# # Laplace: curvature structures, the GLM predictive, the marginal likelihood
#
# The Laplace approximation puts a Gaussian at a MAP estimate,
# $q(\theta) = \mathcal N(\theta_\text{MAP}, P^{-1})$ with
# $P = (K + \Delta) / T$ under posterior tempering: $K$ the generalized
# Gauss-Newton (GGN) of the log-likelihood, $\Delta$ the prior precision.
# `bj.laplace` computes $K$ in one matrix-free pass over the data, as a
# diagonal, per-layer Kronecker factors (KFAC) or a dense matrix, over all
# weights or the last layer only. Predict with the linearized (GLM)
# predictive, then tune $\Delta$: by the Laplace evidence or on held-out data.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np
import optax
from _guide import budget, save_figure

import bayesjax as bj

ds = bj.data.load("digits")
x_val, y_val, x_test, y_test = ds.x_test[:300], ds.y_test[:300], ds.x_test[300:], ds.y_test[300:]
model = bj.models.mlp([50, 50], num_outputs=ds.num_classes)
lik = bj.likelihoods.categorical()
lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), lik, num_data=len(ds.y_train))

# %% [markdown]
# First the MAP: Adam on the per-example loss (the mean negative
# log-likelihood plus the prior's $1/N$ share), so `optax.adam(1e-3)` means
# what it means in any training loop.

# %%
run = bj.run(jax.random.key(0), bj.map(lj, optax.adam(1e-3)), model.init(jax.random.key(1), ds.x_train[:1]),
             (ds.x_train, ds.y_train), num_steps=budget(3000, 200), batch_size=128, progress=False)
params_map = jax.tree.map(lambda leaf: leaf[0], run.state.params)     # the one chain's estimate
print("MAP:", bj.metrics.evaluate(bj.predictive(model.apply, run.sample(jax.random.key(2), 1), x_test, lik), y_test))

# %% [markdown]
# Three fits on the same MAP. Each is a `LaplacePosterior`: it samples
# weights, predicts with the GLM probit link, and evaluates its evidence.

# %%
fits = {
    "diag": bj.laplace(lj, params_map, (ds.x_train, ds.y_train), hessian="diag"),
    "KFAC": bj.laplace(lj, params_map, (ds.x_train, ds.y_train), hessian="kfac"),
    "last layer (KFAC)": bj.laplace(lj, params_map, (ds.x_train, ds.y_train), hessian="kfac",
                                    subset="last_layer"),
}
untuned = {name: bj.metrics.evaluate(post.predictive_glm(x_test, link="probit"), y_test)["nll"]
           for name, post in fits.items()}
print("test NLL under the N(0, 1) prior:", {k: round(float(v), 3) for k, v in untuned.items()})

# %% [markdown]
# Under an untuned $\mathcal N(0, 1)$ prior the GLM predictive is
# underconfident. Two ways to tune the prior precision, neither touching the
# MAP or the curvature (no pass over the training data):
#
# * `optimize_prior_precision()` maximizes the Laplace log evidence
#   $\log Z \approx \ell(\theta_\text{MAP}) + \tfrac D2 \log 2\pi - \tfrac12 \log|P|$,
#   optionally one precision per layer (`per_layer=True`);
# * `optimize_prior_precision("gridsearch", x_val=, y_val=)` picks the
#   precision whose GLM predictive has the best held-out NLL.

# %%
rows = []
for name, post in fits.items():
    evidence = post.optimize_prior_precision(per_layer=True, num_steps=budget(200, 20))
    validated = post.optimize_prior_precision("gridsearch", x_val=x_val, y_val=y_val,
                                              grid=np.logspace(-2, 4, budget(13, 3)))
    nll = lambda p: float(bj.metrics.evaluate(p.predictive_glm(x_test, link="probit"), y_test)["nll"])  # noqa: E731
    rows.append((name, float(untuned[name]), nll(evidence), nll(validated),
                 float(post.log_marginal_likelihood()), float(evidence.log_marginal_likelihood())))
    print(f"{name:18s} NLL untuned {rows[-1][1]:.3f}, evidence-tuned {rows[-1][2]:.3f}, "
          f"validation-tuned {rows[-1][3]:.3f}; log Z {rows[-1][4]:.1f} -> {rows[-1][5]:.1f}")

# %% [markdown]
# The evidence prefers a weaker prior than prediction does; tuning on
# held-out data is the choice when the predictive is what counts.

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
positions = np.arange(len(rows))
for offset, column, label in ((-0.25, 1, "N(0, 1) prior"), (0.0, 2, "evidence-tuned (per layer)"),
                              (0.25, 3, "validation-tuned")):
    ax.bar(positions + offset, [row[column] for row in rows], width=0.25, label=label)
ax.set_xticks(positions, [row[0] for row in rows])
ax.set(ylabel="test NLL (GLM probit)", title="Laplace on the digits MLP")
ax.legend()
fig.tight_layout()
save_figure(fig, "laplace_nll")
