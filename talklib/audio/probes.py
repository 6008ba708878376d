"""Linear probes: how much of a quantity can a *linear* read-out recover from a representation?

A code "contains" phonetic content if a linear classifier on it predicts the phone; it contains
pitch if a linear regressor predicts the speaker-normalised log-F0. Probes are fit on training
clips and scored on held-out clips. Standardised inputs; multinomial logistic regression (lbfgs) and
ridge regression from scikit-learn (a librosa dependency) — both deterministic.
"""

from __future__ import annotations

import numpy as np


def _scale(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 1e-8, std, 1.0)  # constant columns (e.g. one-hot bins never seen) stay put
    return (train - mean) / std, (test - mean) / std


def phoneme_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                  max_iter: int = 300) -> float:
    """Held-out accuracy of a linear phone classifier. x: (n, D) features, y: (n,) phone ids."""
    from sklearn.linear_model import LogisticRegression

    a, b = _scale(np.asarray(x_train, np.float64), np.asarray(x_test, np.float64))
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    clf = LogisticRegression(max_iter=max_iter, C=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(a, y_train)
    return float(np.mean(clf.predict(b) == y_test))


def regression_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                     alpha: float = 1.0) -> float:
    """Held-out R² of a ridge regression x -> y (1 = perfect, 0 = no better than the mean)."""
    a, b = _scale(np.asarray(x_train, np.float64), np.asarray(x_test, np.float64))
    a1 = np.concatenate([a, np.ones((len(a), 1))], 1)
    b1 = np.concatenate([b, np.ones((len(b), 1))], 1)
    reg = alpha * np.eye(a1.shape[1])
    reg[-1, -1] = 0.0
    w = np.linalg.solve(a1.T @ a1 + reg, a1.T @ np.asarray(y_train, np.float64))
    pred = b1 @ w
    y = np.asarray(y_test, np.float64)
    return float(1.0 - np.sum((y - pred) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-12))


def majority_accuracy(y_train: np.ndarray, y_test: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent training phone (the floor a probe must beat)."""
    values, counts = np.unique(y_train, return_counts=True)
    return float(np.mean(y_test == values[counts.argmax()]))
