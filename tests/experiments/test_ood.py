"""Out-of-distribution inputs: shapes and dtypes kept, image shifts refused on non-images."""
import numpy as np
import pytest

from bayesjax.experiments.ood import OOD_SHIFTS, default_shift, ood_inputs


def test_shifts_keep_shape_and_dtype():
    images = np.random.default_rng(1).normal(size=(5, 8, 8, 1)).astype(np.float32)
    for shift in OOD_SHIFTS:
        shifted = ood_inputs(images, shift)
        assert shifted.shape == images.shape and shifted.dtype == images.dtype
        assert not np.array_equal(shifted, images)
    np.testing.assert_array_equal(ood_inputs(images, "rot90"), np.rot90(images, axes=(1, 2)))
    np.testing.assert_array_equal(ood_inputs(images, "flip"), images[:, ::-1])
    assert default_shift(images) == "rot90" and default_shift(images[:, :, 0, 0]) == "noise"


def test_image_shifts_need_images():
    with pytest.raises(ValueError, match="needs images"):
        ood_inputs(np.zeros((5, 4), np.float32), "rot90")
