"""scikit-learn's bundled sets (digits, breast_cancer, wine, iris, diabetes), split with ``train_test_split``.

scikit-learn is imported on first use: ``import bayesjax.data`` imports only NumPy.
"""
from __future__ import annotations

from bayesjax.data.dataset import Arrays

__all__ = ["sklearn_set"]


def sklearn_set(loader: str, shape: tuple[int, ...], stratify: bool, split: int, root, test_fraction: float) -> Arrays:
    """Loads ``sklearn.datasets.<loader>`` and splits it with ``train_test_split``.

    Args:
        loader: the loader's name in ``sklearn.datasets`` (``"load_digits"``).
        shape: one example's shape (``(8, 8, 1)`` for digits, ``(-1,)`` for a
            feature vector).
        stratify: keep the class proportions in both parts (classification).
        split: ``random_state`` of the split.
        root: unused (the sets ship with scikit-learn).
        test_fraction: fraction held out for testing.

    Returns:
        ``(x_train, y_train, x_test, y_test)``, raw.
    """
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    x, y = getattr(datasets, loader)(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.reshape(len(x), *shape), y, test_size=test_fraction, random_state=split, stratify=y if stratify else None
    )
    return x_train, y_train, x_test, y_test
