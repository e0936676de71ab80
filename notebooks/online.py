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
# # Online learning on a drifting stream
#
# `bj.online` carries a Gaussian belief from batch to batch: today's
# posterior is tomorrow's prior,
#
# $$\log q_t(\theta) = \tfrac{w_t}{T} \log p(D_t \mid \theta) + \log q_{t \mid t-1}(\theta) + \text{const},$$
#
# approximated by an extended Kalman filter (`"ekf"`), a Laplace step at
# each batch's MAP (`"laplace_diag"`, `"laplace_kfac"`, `"laplace_full"`) or
# mean-field VI (`"vi"`). On a stream that drifts, old data must be let go:
# before each batch the belief is loosened by exponential forgetting
# (`forgetting=` $\gamma$, the data's share of the precision decays by
# $\gamma$) or random-walk noise (`process_noise=` $q$, added to every
# weight's variance). Each step records the batch's one-step-ahead
# (prequential) log predictive *before* learning from it, in
# `info.log_predictive`.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np
from _guide import budget, save_figure

import bayesjax as bj


def rotating_moons(num_examples: int, rotation: float, seed: int = 0):
    """Two moons whose example i is rotated by ``rotation * i / num_examples`` about the centre."""
    x, y = bj.data.sample_moons(np.random.default_rng(seed), num_examples)
    x = x - np.array([0.5, 0.25])
    angle = rotation * np.arange(num_examples) / num_examples
    cos, sin = np.cos(angle), np.sin(angle)
    rotated = np.stack([cos * x[:, 0] - sin * x[:, 1], sin * x[:, 0] + cos * x[:, 1]], axis=1)
    return rotated.astype(np.float32), y.astype(np.int32)


batch_size, num_batches = 20, budget(300, 30)
x, y = rotating_moons(batch_size * num_batches, rotation=2 * np.pi)   # the boundary turns once, gradually
change = num_batches // 2
y[change * batch_size:] = 1 - y[change * batch_size:]                 # and the labels swap half-way: abruptly
model = bj.models.mlp([32, 32], num_outputs=2)
lj = bj.log_joint(model.apply, bj.priors.layerwise("he"), bj.likelihoods.categorical(), num_data=len(y))
params = model.init(jax.random.key(0), x[:1])

# %% [markdown]
# Feed the stream in order: `shuffle=False` makes batch $t$ the examples
# $[tb, (t+1)b)$ (an iterable of batches works the same way). The EKF needs
# no learning rate; the Laplace step's default inner optimizer is
# Gauss-Newton with a line search.

# %%
learners = {
    "EKF": ("ekf", {}),
    "EKF, q = 1e-4": ("ekf", {"process_noise": 1e-4}),
    "Laplace (diag)": ("laplace_diag", {}),
    "Laplace (diag), gamma = 0.9": ("laplace_diag", {"forgetting": 0.9}),
}
after = slice(change, change + max(1, num_batches // 6))
curves = {}
for name, (method, options) in learners.items():
    post = bj.run(jax.random.key(1), bj.online(lj, method, **options), params, (x, y), num_steps=num_batches,
                  batch_size=batch_size, shuffle=False, progress=False)
    curves[name] = -np.asarray(post.info.log_predictive[:, 0]) / batch_size   # NLL per example, per batch
    print(f"{name:28s} prequential NLL: before the swap {curves[name][:change].mean():.3f}, "
          f"just after it {curves[name][after].mean():.3f}, overall {curves[name].mean():.3f}")

# %% [markdown]
# The prequential NLL per batch, smoothed. Read it around the swap: how
# high each learner jumps and how fast it relearns, against what forgetting
# costs on the stretches where the stream changes slowly. Which learner wins
# depends on the drift; the prequential NLL is the measure to choose by.

# %%
window = budget(15, 3)
fig, ax = plt.subplots(figsize=(7, 3.5))
for name, curve in curves.items():
    ax.plot(np.arange(window - 1, len(curve)), np.convolve(curve, np.ones(window) / window, mode="valid"),
            label=name)   # each point: the mean of the window of batches ending there
ax.axvline(change, color="k", lw=0.5, ls="--")
ax.set(xlabel="batch", ylabel="one-step-ahead NLL per example", yscale="log",
       title="Rotating two moons, labels swapped half-way")
ax.legend()
fig.tight_layout()
save_figure(fig, "online_prequential")

# %% [markdown]
# `post.sample(key, n)` draws from the final belief for `bj.predictive`;
# `likelihood_weight=` reweights each batch (a constant or a schedule), and
# `predictive="mc"` scores batches by weight draws instead of the GLM.
