"""Datasets as NumPy arrays, standardized with training statistics only.

Sources:

- scikit-learn's bundled sets (:mod:`~bayesjax.data.bundled`): ``digits``
  (8x8x1 images), ``breast_cancer``, ``wine``, ``iris`` (classification) and
  ``diabetes`` (regression), split with
  ``sklearn.model_selection.train_test_split(random_state=split)``, stratified
  for classification.
- generated with NumPy, seeded by ``split`` (:mod:`~bayesjax.data.generated`):
  ``moons`` (two interleaving half circles) and ``gap`` (1-D regression with a
  hole in the training inputs, for in-between uncertainty; Foong et al. 2019);
  ``mnist1d`` (Greydanus 2020), generated offline by the ``mnist1d`` package.
- ``fashion_mnist`` (Xiao et al. 2017), read from local IDX files
  (:mod:`~bayesjax.data.fashion_mnist`).
- the UCI regression benchmark of Hernandez-Lobato & Adams (2015), read from
  local folders with its 20 (protein: 5) fixed train/test splits
  (:mod:`~bayesjax.data.uci`).

:func:`load` (:mod:`~bayesjax.data.registry`) fetches a source by name and
standardizes it (:mod:`~bayesjax.data.standardize`): tabular inputs per
feature; images and 1-D signals with one global scalar mean and deviation.
Regression targets are standardized too, and :attr:`Dataset.y_mean` /
:attr:`Dataset.y_std` keep the raw training target's statistics so that
metrics can report original units. Importing this package imports only NumPy;
scikit-learn and mnist1d are imported by the loaders that need them.

Example:
    >>> from bayesjax import data
    >>> ds = data.load("iris", split=0)
    >>> ds.x_train.shape, ds.num_classes
    ((120, 4), 3)
"""
from bayesjax.data.dataset import Dataset
from bayesjax.data.generated import sample_moons
from bayesjax.data.registry import load, names
from bayesjax.data.uci import uci_folder

__all__ = ["Dataset", "load", "names", "sample_moons", "uci_folder"]
