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
# # The cold-posterior sweep
#
# Wenzel et al. (2020) found that SG-MCMC posteriors of deep networks predict
# better when tempered cold, $p_T(\theta \mid D) \propto
# [p(D \mid \theta)\,p(\theta)]^{1/T}$ with $T < 1$; Izmailov et al. (2021)
# and Kapoor et al. (2022) traced much of the effect to data augmentation.
# A sweep runs one method over a grid of temperatures x seeds. Temperature
# and seed are traced values, so the whole grid (training, sampling,
# predictive, metrics) runs as one `vmap` inside one `jit` per chunk of
# cells, its cells sharded over the devices; finished chunks are written
# atomically, and rerunning the same sweep resumes it.
#
# From the command line the same sweep is
# `bayesjax sweep --dataset digits --method sgld --augment both --out results/sweep`;
# the research runs are the Fashion-MNIST presets,
# `bayesjax sweep --preset fmnist-mlp` (and `fmnist-cnn`, a GPU-sized job).
# `bayesjax sweep --help` lists every option with its default, among them
# `--laplace-prior evidence|validation` (and `--validation-fraction`), which
# tunes the Laplace methods' prior precision in each cell at its temperature
# in place of the prior's own (`SweepConfig.laplace_prior`; the records'
# `prior_precision` says which value each cell used).

# %%
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from _guide import budget, save_figure

from bayesjax.experiments import sweep

temperatures = budget((1e-4, 1e-3, 1e-2, 1e-1, 1.0), (1e-2, 1.0))
out = tempfile.mkdtemp(prefix="cold_posterior_")
augments = budget((False, True), (False,))
records = []
for augment in augments:
    config = sweep.SweepConfig(dataset="digits", method="sgld", temperatures=temperatures,
                               seeds=budget((0, 1), (0,)), augment=augment, num_steps=budget(2000, 60),
                               num_chains=budget(2, 1), burnin=budget(1000, 30), thin=budget(50, 10),
                               step_size=0.1)
    records += [dict(record, augment=augment) for record in sweep.run_sweep(config, f"{out}/{augment}", progress=False)]
print(sorted(records[0]))

# %% [markdown]
# Each record is one cell: its temperature and seed, the test metrics, and
# whether the nominal temperature was really sampled: the ratio of
# minibatch-gradient noise to the injected noise (above 1, the chain is
# hotter than $T$) and the configurational temperature estimate.

# %%
for record in records:
    print(f"augment={record['augment']!s:5} T={record['temperature']:<7g} seed {record['seed']}: "
          f"accuracy {record['accuracy']:.3f}, NLL {record['nll']:.3f}, "
          f"noise ratio {record['grad_noise_ratio']:.2g}, configurational T {record['configurational_temperature']:.2g}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for augment in augments:
    cells = [r for r in records if r["augment"] == augment]
    for ax, metric in zip(axes, ("nll", "accuracy")):
        values = np.array([[r[metric] for r in cells if r["temperature"] == t] for t in temperatures])
        ax.errorbar(temperatures, values.mean(1), yerr=values.std(1), marker="o", capsize=3,
                    label=f"augmentation {'on' if augment else 'off'}")
        ax.set(xscale="log", xlabel="temperature T", ylabel=f"test {metric}")
axes[0].legend()
fig.suptitle("SGLD on digits (MLP 50-50): the cold-posterior effect")
fig.tight_layout()
save_figure(fig, "cold_posterior_digits")

# %% [markdown]
# Read the honest-temperature columns before the curves. Where the noise
# ratio exceeds 1 (cold cells, more so with augmentation) minibatch noise,
# not the injected noise, sets the chain's temperature; where the
# configurational temperature is far from $T$ the chain has not equilibrated.
# `bayesjax sweep` warns about every such cell. A short run like this one
# shows the direction of the effect (with augmentation, colder predicts
# better; without it, $T = 1$ is about as good), not the published curves:
# those are the Fashion-MNIST presets' job.
