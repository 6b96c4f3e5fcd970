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

    root = str(tmp_path_factory.mktemp("tensorflow_datasets"))
    for domain in SUITE_DOMAINS:
        data.digits_builder(domain, root)
    return root
