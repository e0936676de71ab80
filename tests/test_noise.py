"""bayesjax.noise: standard normal draws from both words of each Threefry hash."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from bayesjax.noise import normal_like, normal_like_where, threefry_normal


def test_draws_are_standard_normal():
    z = np.asarray(threefry_normal(jax.random.key(3), (200_001,)))  # odd: the hash pads its counter
    assert z.shape == (200_001,) and np.isfinite(z).all()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(z.var() - 1) < 4 * np.sqrt(2 / z.size)
    # both words of a hash evaluation feed the draws: the two halves are not correlated
    half = z.size // 2
    assert abs(np.corrcoef(z[:half], z[half:2 * half])[0, 1]) < 4 / np.sqrt(half)


def test_pure_function_of_the_key_and_exact_under_vmap():
    keys = jax.random.split(jax.random.key(0), 3)
    one = [threefry_normal(k, (5, 4)) for k in keys]
    batched = jax.vmap(lambda k: threefry_normal(k, (5, 4)))(keys)
    np.testing.assert_array_equal(np.stack(one), batched)
    np.testing.assert_array_equal(one[0], threefry_normal(keys[0], (5, 4)))
    assert not np.allclose(one[0], one[1])


def test_raw_keys_give_the_typed_keys_draws():
    typed = jax.random.key(7)
    np.testing.assert_array_equal(threefry_normal(typed, (6,)), threefry_normal(jax.random.key_data(typed), (6,)))


def test_normal_like_keeps_structure_dtypes_and_independent_leaves():
    tree = {"a": jnp.zeros((300, 300)), "b": jnp.zeros((300, 300)), "h": jnp.zeros(3, jnp.bfloat16)}
    noise = normal_like(jax.random.key(1), tree)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), noise) == jax.tree.map(lambda x: (x.shape, x.dtype), tree)
    a, b = np.ravel(noise["a"]), np.ravel(noise["b"])
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(a.size)


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_other_key_implementations_use_jax_random_normal(impl):
    key = jax.random.key(0, impl=impl)
    tree = {"w": jnp.zeros((4, 3))}
    expected = jax.random.normal(jax.random.split(key, 1)[0], (4, 3))
    np.testing.assert_array_equal(normal_like(key, tree)["w"], expected)


def test_normal_like_where_draws_only_where_active():
    tree = {"w": jnp.zeros((4, 3)), "b": jnp.zeros(2)}
    key = jax.random.key(2)
    np.testing.assert_array_equal(normal_like_where(jnp.array(True), key, tree)["w"], normal_like(key, tree)["w"])
    assert not np.any(normal_like_where(jnp.array(False), key, tree)["w"])


@pytest.mark.parametrize("active", [[True, False, True], [False, False, False], [True, True, True]])
def test_normal_like_where_under_vmap_equals_its_definition(active):
    keys = jax.random.split(jax.random.key(4), 3)
    trees = {"w": jnp.zeros((3, 4, 2)), "b": jnp.zeros((3, 2))}
    active = jnp.array(active)
    got = jax.jit(jax.vmap(normal_like_where))(active, keys, trees)
    expected = jax.vmap(lambda a, k, t: jax.tree.map(lambda n: jnp.where(a, n, 0), normal_like(k, t)))(active, keys, trees)
    jax.tree.map(np.testing.assert_array_equal, got, expected)
    # the chains' draw stays a cond on their any() (a batched cond would have become a select of both branches)
    jaxpr = jax.make_jaxpr(jax.vmap(normal_like_where))(active, keys, trees).jaxpr
    assert "cond" in {eqn.primitive.name for eqn in jaxpr.eqns}


def test_normal_like_where_under_two_vmaps_keeps_the_values():
    keys = jax.random.split(jax.random.key(5), 6).reshape(2, 3)
    active = jnp.array([[True, False, True], [False, False, False]])
    tree = {"w": jnp.zeros((2, 3, 5))}
    got = jax.vmap(jax.vmap(normal_like_where))(active, keys, tree)
    expected = jax.vmap(jax.vmap(lambda a, k, t: jax.tree.map(lambda n: jnp.where(a, n, 0), normal_like(k, t))))(
        active, keys, tree)
    np.testing.assert_array_equal(got["w"], expected["w"])


def test_normal_like_where_unbatched_tree_and_key_broadcast():
    key = jax.random.key(6)
    tree = {"w": jnp.zeros(3)}
    got = jax.vmap(normal_like_where, (0, None, None))(jnp.array([True, False]), key, tree)
    np.testing.assert_array_equal(got["w"][0], normal_like(key, tree)["w"])
    assert not np.any(got["w"][1])
