"""Fixtures shared by the whole suite."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The domains the suite trains and evaluates on; built once per session (about 10 s).
SUITE_DOMAINS = ("mnist", "mnist_m", "digits", "mnist_0_4", "mnist_5_9")


@pytest.fixture(scope="session")
def digits_data_dir(tmp_path_factory):
    """A TFDS data_dir holding the embedded digit domains, built once per test session."""
    from trainer import data
    from trainer.eval import classifiers

    root = str(tmp_path_factory.mktemp("tensorflow_datasets"))
    for domain in SUITE_DOMAINS:
        data.digits_builder(domain, root)
    # Smoke trainings evaluate at their end: cache tiny judges for the pair they train on, so
    # those evaluations load them instead of training full classifiers (tests that judge
    # accuracy train their own).
    classifiers.prepare("digits", "mnist", "mnist_m", data_dir=root, epochs=1, train_limit=256)
    return root
