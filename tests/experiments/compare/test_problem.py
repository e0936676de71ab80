"""``setup``: which methods the model allows."""
from bayesjax.experiments import compare


def test_default_methods_leave_out_hmc_above_the_size_limit():
    problem, names, skipped = compare.setup(compare.CompareConfig(hidden=(200, 200)))
    assert problem.num_params > compare.HMC_MAX_PARAMS
    assert "hmc" not in names and "weights" in skipped["hmc"]
    assert names == [n for n in compare.METHODS if n != "hmc"]
    _, names, skipped = compare.setup(compare.CompareConfig(model="cnn", hmc_max_params=10**6))
    assert "laplace_kfac" in names and "hmc" in names
