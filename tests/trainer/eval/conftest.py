"""Evaluation fixtures: tiny classifiers cached where evaluation looks for them."""

import pytest

# A few hundred images and one epoch: enough to exercise every code path, not to judge.
TINY = {"epochs": 1, "train_limit": 256}


@pytest.fixture(scope="session")
def digit_judges(digits_data_dir):
    """Caches mnist / mnist_m class classifiers and their domain classifier in the suite's
    data_dir (reused when an earlier test already trained them), so evaluation loads them."""
    from trainer.eval import classifiers

    judges = classifiers.prepare("digits", "mnist", "mnist_m", data_dir=digits_data_dir, **TINY)
    return {"mnist": judges["a"], "mnist_m": judges["b"], "domain": judges["domain"]}
