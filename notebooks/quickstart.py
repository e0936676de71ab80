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
# # bayesjax quickstart
#
# A Bayesian neural network on the digits data set: a model as a pure function,
# a tempered log-joint, an inference method behind the one `Algorithm`
# protocol, and the Bayesian model average
# $p(y \mid x, D) \approx \frac{1}{J} \sum_j p(y \mid x, \theta_j)$.
# Four MAP chains from independent initializations form a small deep ensemble.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

import bayesjax as bj

init_key, run_key, sample_key = jax.random.split(jax.random.key(0), 3)
ds = bj.data.load("digits")
model = bj.models.mlp([50, 50], num_outputs=ds.num_classes)
lik = bj.likelihoods.categorical()
lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), lik, num_data=len(ds.y_train))
post = bj.run(run_key, bj.map(lj, optax.adam(1e-3)), lambda k: model.init(k, ds.x_train[:1]),
              (ds.x_train, ds.y_train), num_steps=1000, batch_size=128, num_chains=4, progress=False)

# %% [markdown]
# One draw per chain: the ensemble members. The reducer splits total
# uncertainty into aleatoric (expected entropy) and epistemic (mutual
# information) parts.

# %%
members = post.sample(sample_key, 4)
ensemble = bj.predictive(model.apply, members, ds.x_test, lik)
single = bj.predictive(model.apply, jax.tree.map(lambda m: m[:1], members), ds.x_test, lik)
print("ensemble:", bj.metrics.evaluate(ensemble, ds.y_test))
print("member 0:", bj.metrics.evaluate(single, ds.y_test))

# %%
wrong = np.asarray(ensemble.probs.argmax(-1)) != ds.y_test
fig, ax = plt.subplots(figsize=(5, 3))
bins = np.linspace(0, float(ensemble.mutual_information.max()), 30)
ax.hist(np.asarray(ensemble.mutual_information)[~wrong], bins, alpha=0.6, density=True, label="correct")
ax.hist(np.asarray(ensemble.mutual_information)[wrong], bins, alpha=0.6, density=True, label="wrong")
ax.set(xlabel="mutual information (epistemic)", ylabel="density", title="Ensemble disagreement on digits")
ax.legend()
fig.tight_layout()
