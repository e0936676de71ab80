"""What a comparison writes: the bands pair the MAP with a Bayesian method."""
from bayesjax.experiments import compare


def test_bands_pair_the_map_with_a_bayesian_method():
    assert compare.bands_methods(list(compare.METHODS)) == ["map", "hmc"]
    assert compare.bands_methods(["sgld", "map", "deep_ensemble"]) == ["map", "deep_ensemble"]
    assert compare.bands_methods(["swag"]) == ["swag"]
