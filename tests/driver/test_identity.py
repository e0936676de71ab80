"""A run's identity (bayesjax/driver/identity.py): hyperparameters and the log-joint fingerprinted, the same in any process."""
import subprocess
import sys

import jax
import jax.numpy as jnp
import optax

import bayesjax as bj
from bayesjax.driver.identity import fingerprint, log_joint_identity

MODEL = bj.models.mlp([8], num_outputs=3)


def log_joint(temperature=1.0, scale=1.0, width=8, tempering="posterior", num_data=40):
    model = MODEL if width == 8 else bj.models.mlp([width], num_outputs=3)
    return bj.log_joint(model.apply, bj.priors.gaussian(scale), bj.likelihoods.categorical(), num_data=num_data,
                        temperature=temperature, tempering=tempering)


BUILDS = {
    "sgld": lambda lj=None: bj.sgld(lj or log_joint(), 0.1),
    "sgld step size": lambda: bj.sgld(log_joint(), 0.2),
    "psgld": lambda: bj.sgld(log_joint(), 0.1, preconditioned=True),
    "sgld schedule": lambda: bj.sgld(log_joint(), optax.cosine_decay_schedule(0.1, 100)),
    "sgld schedule length": lambda: bj.sgld(log_joint(), optax.cosine_decay_schedule(0.1, 200)),
    "temperature": lambda: bj.sgld(log_joint(temperature=0.5), 0.1),
    "tempering": lambda: bj.sgld(log_joint(temperature=0.5, tempering="likelihood"), 0.1),
    "prior scale": lambda: bj.sgld(log_joint(scale=2.0), 0.1),
    "model width": lambda: bj.sgld(log_joint(width=9), 0.1),
    "num_data": lambda: bj.sgld(log_joint(num_data=41), 0.1),
    "sghmc": lambda: bj.sghmc(log_joint(), 0.1),
    "map adam": lambda: bj.map(log_joint(), optax.adam(1e-3)),
    "map adam rate": lambda: bj.map(log_joint(), optax.adam(2e-3)),
    "map adam b1": lambda: bj.map(log_joint(), optax.adam(1e-3, b1=0.8)),
    "ensemble": lambda: bj.ensemble(bj.map(log_joint(), optax.adam(1e-3)), 3, anchored=True),
    "ensemble size": lambda: bj.ensemble(bj.map(log_joint(), optax.adam(1e-3)), 4, anchored=True),
}


def test_every_hyperparameter_and_part_of_the_target_changes_the_fingerprint():
    prints = {name: fingerprint(build()) for name, build in BUILDS.items()}
    assert len(set(prints.values())) == len(prints), prints
    # Equal builds are equal, also when nothing is shared between them (a new log-joint of the same parts).
    assert all(fingerprint(build()) == prints[name] for name, build in BUILDS.items())
    assert fingerprint(bj.sgld(log_joint(temperature=jnp.asarray(0.5)), 0.1)) != prints["temperature"]  # typed


def test_applying_the_model_leaves_the_fingerprint_as_it_was():
    # A new process that resumes a checkpoint has not applied the model yet; the model's caches must not count.
    model = bj.models.mlp([8], num_outputs=3)
    before = fingerprint(model)
    model.apply(model.init(jax.random.key(0), jnp.zeros((1, 5))), jnp.zeros((2, 5)))
    assert fingerprint(model) == before


def test_the_log_joint_is_recorded_readably():
    record = log_joint_identity(BUILDS["temperature"]())
    assert {k: record[k] for k in ("num_data", "temperature", "tempering")} == {
        "num_data": 40, "temperature": 0.5, "tempering": "posterior"}
    assert log_joint_identity(bj.Algorithm(None, None, None)) is None


def test_a_fingerprint_is_the_same_in_another_process():
    # A checkpoint is resumed by a new process: no id(), hash() or memory address may enter the fingerprint.
    script = ("import optax, bayesjax as bj; from bayesjax.driver.identity import fingerprint; "
              "model = bj.models.mlp([8], num_outputs=3); "
              "lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=40); "
              "print(fingerprint(bj.map(lj, optax.adam(1e-3))), fingerprint({'s': {1.5, 'a', (2, 3)}}))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "7", "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == [fingerprint(BUILDS["map adam"]()), fingerprint({"s": {1.5, "a", (2, 3)}})]
