#!/usr/bin/env python
"""The injected noise of an SGLD step: ``bayesjax.noise.normal_like`` against ``jax.random.normal``.

    .venv/bin/python benchmarks/noise.py [--chains 8] [--steps 936] [--devices 2] [--repeats 2]

A hand-written SGLD loop (``lax.scan`` over steps, ``vmap`` over chains, the
chains sharded over the host split into ``--devices`` devices) on the
Fashion-MNIST MLP 784-100-100-10 (89,610 weights), batches of 128 drawn at
random from 60,000 synthetic 28x28 images (the timing does not depend on the
pixels), run three ways that differ only in the noise: leaf by leaf with
``jax.random.normal`` (``optax.tree_utils.tree_random_like``, what a
hand-written loop does), with :func:`bayesjax.noise.normal_like`, and with
none (the gradient step alone). Prints chain-steps per second (best of
``--repeats``, compile excluded) and the ratios to the ``jax.random.normal``
loop, measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chains", type=int, default=8)
    parser.add_argument("--steps", type=int, default=936)
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
    import jax
    import jax.numpy as jnp
    import optax

    sys.path.insert(0, os.path.dirname(__file__))
    from _common import machine_facts

    from bayesjax import models, sharding
    from bayesjax.noise import normal_like

    num_data, batch, lr = 60_000, 128, 1e-6
    x = jax.random.normal(jax.random.key(0), (num_data, 28, 28, 1))
    y = jax.random.randint(jax.random.key(1), (num_data,), 0, 10)
    model = models.mlp([100, 100], 10)

    def loss(params, xb, yb):
        log_probs = jax.nn.log_softmax(model.apply(params, xb))
        data_term = -(num_data / batch) * jnp.sum(jnp.take_along_axis(log_probs, yb[:, None], 1))
        return data_term + 0.5 * sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(params))

    draws = {
        "jax.random.normal": optax.tree_utils.tree_random_like,
        "bayesjax.noise": normal_like,
        "no noise": lambda key, tree: jax.tree.map(jnp.zeros_like, tree),
    }

    def loop(draw):
        def chain(seed, x, y):
            key = jax.random.key(seed)
            params = model.init(key, x[:1])

            def step(params, t):
                step_key = jax.random.fold_in(key, t)
                index = jax.random.randint(jax.random.fold_in(step_key, 0), (batch,), 0, num_data)
                grad = jax.grad(loss)(params, x[index], y[index])
                noise = draw(jax.random.fold_in(step_key, 1), params)
                return jax.tree.map(lambda p, g, n: p - lr * g + jnp.sqrt(2 * lr) * n, params, grad, noise), None

            final, _ = jax.lax.scan(step, params, jnp.arange(args.steps))
            return jax.tree.map(jnp.sum, final)

        return jax.jit(jax.vmap(chain, in_axes=(0, None, None)))

    seeds = jax.device_put(jnp.arange(args.chains, dtype=jnp.uint32),
                           sharding.chain_sharding(sharding.mesh(chains=args.devices)))
    rates = {}
    for name, draw in draws.items():
        compiled = loop(draw).lower(seeds, x, y).compile()
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            jax.block_until_ready(compiled(seeds, x, y))
            best = min(best, time.perf_counter() - start)
        rates[name] = args.chains * args.steps / best
    print(machine_facts())
    print(f"SGLD, Fashion-MNIST MLP (89,610 weights), {args.chains} chains on {args.devices} devices, "
          f"{args.steps} steps, batch {batch}")
    for name, rate in rates.items():
        print(f"  {name:18s} {rate:8.0f} chain-steps/s  ({rate / rates['jax.random.normal']:.2f}x)")


if __name__ == "__main__":
    main()
