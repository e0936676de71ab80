"""Online learning benchmark: updates per second and prequential NLL on a drifting stream.

    python benchmarks/online.py [--steps 200] [--batch-size 20] [--refit-every 20]

The stream is a rotating two-moons problem: example i is a two-moons point
(noise 0.15) rotated by ``rotation * i / N`` radians about the data's centre,
so the decision boundary turns steadily; batch t is examples ``[t b, (t+1) b)``
(``bj.run(..., shuffle=False)``). The model is an MLP 2-32-32-2.

Each online method of ``bj.online`` runs once over the stream, with and
without forgetting; its one-step-ahead log predictive is recorded before each
update (``post.info.log_predictive``, GLM probit predictive). The baseline
refits a batch Laplace from scratch every k steps: MAP by full-batch Adam from
the initial weights on the last k batches, then ``bj.laplace(hessian="kfac")``,
whose GLM probit predictive scores the next k batches.

Reported per method: steady-state updates per second (the best of two runs
after a first, compiling one; the refit's figure is steps of the stream per
second of refitting and predicting, after its first refit, which compiles), and
the prequential NLL per example averaged over batches k..T-1 (the first block,
where the refit has no data yet, is left out for every method), and over the
last half of the stream.
"""
from __future__ import annotations

import argparse
import time

START = time.perf_counter()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _common import timed  # noqa: E402

import bayesjax as bj  # noqa: E402

MODEL = bj.models.mlp([32, 32], num_outputs=2)
PRIOR = bj.priors.layerwise("he")


def rotating_moons(num_examples: int, rotation: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two moons whose example i is rotated by ``rotation * i / num_examples`` about the centre."""
    x, y = bj.data.sample_moons(np.random.default_rng(seed), num_examples)
    x = x - np.array([0.5, 0.25])
    angle = rotation * np.arange(num_examples) / num_examples
    cos, sin = np.cos(angle), np.sin(angle)
    rotated = np.stack([cos * x[:, 0] - sin * x[:, 1], sin * x[:, 0] + cos * x[:, 1]], axis=1)
    return rotated.astype(np.float32), y.astype(np.int32)


def methods():
    adam = optax.adam(1e-2)
    return {
        "ekf (diag)": ("ekf", {}),
        "ekf (diag), q=1e-4": ("ekf", {"process_noise": 1e-4}),
        "laplace_diag (GN)": ("laplace_diag", {}),
        "laplace_diag (GN), gamma=0.9": ("laplace_diag", {"forgetting": 0.9}),
        "laplace_kfac (GN)": ("laplace_kfac", {}),
        "laplace_kfac (GN), gamma=0.9": ("laplace_kfac", {"forgetting": 0.9}),
        "laplace_kfac (adam x10), gamma=0.9": ("laplace_kfac", {"optimizer": adam, "num_inner_steps": 10,
                                                                "forgetting": 0.9}),
        "vi (adam x20)": ("vi", {"optimizer": adam, "num_inner_steps": 20}),
        "vi (adam x20), gamma=0.9": ("vi", {"optimizer": adam, "num_inner_steps": 20, "forgetting": 0.9}),
    }


def run_online(lj, params, data, steps, batch_size, method, options):
    algo = bj.online(lj, method, **options)

    def go():
        post = bj.run(jax.random.key(1), algo, params, data, num_steps=steps, batch_size=batch_size,
                      shuffle=False, progress=False)
        return jax.block_until_ready(post.info.log_predictive[:, 0])

    log_predictive = np.asarray(go())
    seconds = min(timed(go).wall_s for _ in range(2))  # best of two: the host is shared
    return steps / seconds, log_predictive


def run_refit(params, data, steps, batch_size, every, map_steps):
    """Batch Laplace refitted from scratch on the last ``every`` batches, scoring the next ``every``."""
    x, y = data
    window = every * batch_size
    lj = bj.log_joint(MODEL.apply, PRIOR, bj.likelihoods.categorical(), num_data=window)
    fit_map = bj.map(lj, optax.adam(1e-2))
    log_predictive = np.full(steps, np.nan)

    def refit(start):
        seen = (x[(start - every) * batch_size:start * batch_size], y[(start - every) * batch_size:start * batch_size])
        post = bj.run(jax.random.key(start), fit_map, params, seen, num_steps=map_steps, progress=False)
        params_map = jax.tree.map(lambda leaf: leaf[0], post.state.params)
        laplace = bj.laplace(lj, params_map, seen, hessian="kfac")
        stop = min(start + every, steps)
        x_next, y_next = x[start * batch_size:stop * batch_size], y[start * batch_size:stop * batch_size]
        scores = np.asarray(laplace.predictive_glm(x_next, link="probit").log_prob(y_next))
        log_predictive[start:stop] = scores.reshape(stop - start, batch_size).sum(axis=1)

    seconds = [timed(refit, start).wall_s for start in range(every, steps, every)]
    return (steps - 2 * every) / sum(seconds[1:]), log_predictive  # the first refit pays the compiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--refit-every", type=int, default=20)
    parser.add_argument("--refit-map-steps", type=int, default=300)
    parser.add_argument("--rotation", type=float, default=2 * np.pi)
    args = parser.parse_args()
    steps, batch_size, every = args.steps, args.batch_size, args.refit_every
    num_examples = steps * batch_size
    data = rotating_moons(num_examples, args.rotation)
    lj = bj.log_joint(MODEL.apply, PRIOR, bj.likelihoods.categorical(), num_data=num_examples)
    params = MODEL.init(jax.random.key(0), data[0][:1])
    print(f"rotating two moons: {steps} batches of {batch_size} ({num_examples} examples), rotation "
          f"{args.rotation:.2f} rad; MLP 2-32-32-2; devices: {jax.devices()[0].platform} x {jax.device_count()}")

    rows = []
    for name, (method, options) in methods().items():
        rate, log_predictive = run_online(lj, params, data, steps, batch_size, method, options)
        rows.append((name, rate, log_predictive))
    rate, log_predictive = run_refit(params, data, steps, batch_size, every, args.refit_map_steps)
    rows.append((f"batch Laplace (kfac) refit every {every}", rate, log_predictive))

    half = steps // 2
    print(f"\n{'method':<40} {'updates/s':>10} {'preq. NLL':>10} {'last half':>10}")
    for name, rate, log_predictive in rows:
        nll = -np.mean(log_predictive[every:]) / batch_size
        late = -np.mean(log_predictive[half:]) / batch_size
        print(f"{name:<40} {rate:>10.1f} {nll:>10.3f} {late:>10.3f}")
    print(f"\n(NLL per example, averaged over batches {every}..{steps - 1}; log 2 = {np.log(2):.3f} is chance.)")
    print(f"whole process: {time.perf_counter() - START:.1f} s")


if __name__ == "__main__":
    main()
