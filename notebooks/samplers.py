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
# # Samplers and their diagnostics
#
# Every sampler in bayesjax targets the same tempered posterior
# $p_T(\theta \mid D) \propto \exp(\text{log\_joint}(\theta, D))$, with the
# temperature $T$ inside `bj.log_joint`. They differ in what they need and in
# what their step size means:
#
# * **SG-MCMC** (`bj.sgld`, `bj.sghmc`, `bj.cyclical_sgld`) steps on
#   minibatches. Its step size is a *learning rate per example*: it multiplies
#   the gradient of the mean loss $U/N$, the scale of `optax.sgd`, so it means
#   the same on any data size and temperature. The update
#   $\theta \leftarrow \theta - \text{lr}\,\nabla(U/N) + \sqrt{2\,\text{lr}\,T/N}\,\xi$
#   has no Metropolis correction.
# * **HMC and NUTS** (`bj.hmc`, `bj.nuts`) run on the full batch and are exact:
#   their step size is the leapfrog step on the log-joint itself, best set by
#   window adaptation inside the run.
#
# Then check convergence where it matters for a neural network: R-hat and
# effective sample size (ESS) of the *predictions*, which do not care about
# weight-space symmetries (Izmailov et al. 2021).

# %%
import arviz
import jax
import matplotlib.pyplot as plt
import numpy as np
from _guide import budget, save_figure

import bayesjax as bj

ds = bj.data.load("gap")                         # y = sin(3x) + noise, no training inputs in (-0.3, 0.3)
model = bj.models.mlp([32, 32], num_outputs=1)
noise = 0.1
lik = bj.likelihoods.gaussian(noise)
lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), lik, num_data=len(ds.y_train))
init = lambda key: model.init(key, ds.x_train[:1])  # noqa: E731  (each chain its own start)
print(len(ds.y_train), "training points;", ds.x_train.shape, ds.y_train.shape)

# %% [markdown]
# ## SGLD on minibatches
#
# A learning rate of 0.1 per example suits a categorical likelihood. A
# Gaussian likelihood of noise $\sigma$ has curvature $\sigma^{-2}$ per
# example, so the same rule gives $0.1\,\sigma^2 = 10^{-3}$ here. Four chains,
# each from its own initialization, run vmapped in one compiled scan;
# positions after `burnin` are kept every `thin` steps.

# %%
steps, burnin, thin = budget(20_000, 600), budget(10_000, 300), budget(100, 10)
sgld = bj.run(jax.random.key(0), bj.sgld(lj, step_size=0.1 * noise**2), init, (ds.x_train, ds.y_train),
              num_steps=steps, batch_size=32, num_chains=4, burnin=burnin, thin=thin, progress=False)
print("kept per chain:", sgld.state.num_collected.tolist(), "diverged:", sgld.divergences)

# %% [markdown]
# ## HMC with window adaptation
#
# Full-batch HMC adapts its step size and a diagonal mass matrix during the
# first `num_adaptation_steps` steps (Stan's windows, inside the scan); pass a
# `burnin` at least as long so the warm-up is not kept.

# %%
hmc_steps, adapt = budget(1500, 60), budget(500, 30)
hmc = bj.run(jax.random.key(1), bj.hmc(lj, num_integration_steps=budget(30, 5), num_adaptation_steps=adapt), init,
             (ds.x_train, ds.y_train), num_steps=hmc_steps, num_chains=4, burnin=adapt, progress=False)
print("acceptance after warm-up:", float(hmc.info.acceptance_rate[adapt:].mean()))

# %% [markdown]
# ## R-hat and ESS, in weight and in function space
#
# `bj.diagnostics.summary` gives the worst case over the checked weights and,
# given probe inputs, over the predictions there: split and rank-normalized
# R-hat (hold it to 1.01), bulk and tail ESS. Weight-space R-hat of a
# network is usually poor even when the predictions mix.

# %%
x_probe = np.linspace(-1.5, 1.5, 25)[:, None].astype(np.float32)
for name, post, (b, t) in (("SGLD", sgld, (burnin, thin)), ("HMC", hmc, (adapt, 1))):
    report = bj.diagnostics.summary(post, model.apply, x_probe, lik, burnin=b, thin=t)
    print(f"{name}: " + ", ".join(f"{k} {report[k]:.3g}" for k in (
        "rank_rhat_max", "ess_min", "function_rank_rhat_max", "function_ess_min", "function_tail_ess_min")))

# %% [markdown]
# Read the function-space numbers first. On this problem, even 1,500 HMC
# transitions of 30 leapfrog steps leave the function-space R-hat well above
# 1.01: in the gap, where no data constrains the network, the chains wander
# slowly between functions (the trace in the figure below). The band is then
# a rough estimate; run longer, or more chains, before trusting its width.
#
# The same chains in ArviZ: `to_arviz` exports the chosen weights and the
# probe predictions (`"predictions"`, dims chain, draw, probe) with the
# per-step statistics (acceptance, step size, divergences) in `sample_stats`.

# %%
idata = bj.diagnostics.to_arviz(hmc, model.apply, x_probe, lik, burnin=adapt)
print(arviz.summary(idata, var_names=["predictions"]).head())

# %% [markdown]
# The predictive: both samplers widen their band in the gap, where there is
# no data (mean ± 2 standard deviations, noise included).

# %%
x_plot = np.linspace(-1.5, 1.5, 200)[:, None].astype(np.float32)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
for ax, (name, post) in zip(axes, (("SGLD", sgld), ("HMC", hmc))):
    pred = bj.predictive(model.apply, post.sample(jax.random.key(2), 200), x_plot, lik)
    mean, std = np.asarray(pred.mean), np.sqrt(np.asarray(pred.variance))
    ax.fill_between(x_plot[:, 0], mean - 2 * std, mean + 2 * std, alpha=0.3)
    ax.plot(x_plot[:, 0], mean)
    ax.scatter(ds.x_train[:, 0], ds.y_train, s=3, c="k")
    ax.set(title=f"{name} predictive", ylim=(-3, 3))
draws = bj.diagnostics.chain_samples(hmc)                          # leaves [chain, draw, ...]
trace = jax.vmap(jax.vmap(lambda p: model.apply(p, x_probe[12:13])[0, 0]))(draws)
axes[2].plot(np.asarray(trace).T)
axes[2].set(title="HMC: prediction at x = 0 per chain", xlabel="draw")
fig.tight_layout()
save_figure(fig, "samplers_predictive")
