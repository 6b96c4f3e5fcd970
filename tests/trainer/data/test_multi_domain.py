"""The multi_domain kind: domain indices, balanced training draws, derived style domains, and
the label groups of StarGAN's mask vector."""

import numpy as np
import pytest

from tests.trainer.data.conditional_data import build_digits, data_config
from trainer.data import multi_domain

GROUPS = "dataset=mnist;style=mnist_inverted,mnist_thick"


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    return build_digits(tmp_path_factory.mktemp("digits"))


def test_groups_parse_and_fall_back_to_domains():
    assert multi_domain.parse_groups("a=x,y; b=z") == (("a", ("x", "y")), ("b", ("z",)))
    config = data_config(domains=("mnist", "digits"))
    assert multi_domain.domain_groups(config) == (("domain", ("mnist", "digits")),)
    grouped = data_config(hparams={"domain_groups": GROUPS})
    assert multi_domain.domain_labels(grouped) == ("mnist", "mnist_inverted", "mnist_thick")
    with pytest.raises(ValueError, match="disagrees"):
        multi_domain.domain_groups(
            data_config(domains=("mnist",), hparams={"domain_groups": GROUPS})
        )
    with pytest.raises(ValueError, match="several domains"):
        multi_domain.domain_groups(data_config(domains=("mnist",)))
    assert multi_domain.domain_labels(data_config(domain_a="digits")) == ("digits", "mnist_m")
    with pytest.raises(ValueError, match="repeats a group"):
        multi_domain.domain_groups(data_config(hparams={"domain_groups": "a=x;a=y"}))


def test_batches_carry_the_source_domain_index(digits_dir):
    config = data_config(data_dir=digits_dir, hparams={"domain_groups": GROUPS, "n_critic": 2})
    train = multi_domain.multi_domain_dataset(config, "train", batch_size=8, training=True, seed=0)
    batch = next(iter(train.as_numpy_iterator()))
    # n_critic batches concatenated for one step.
    assert batch["x"].shape == (16, 16, 16, 3) and batch["domain"].shape == (16,)
    domains = np.concatenate([b["domain"] for b in train.take(10).as_numpy_iterator()])
    counts = np.bincount(domains, minlength=3)
    assert counts.min() > 0.2 * counts.sum(), counts  # every domain drawn about equally
    x, d = batch["x"], batch["domain"]
    # mnist_inverted has a white background, the others a black one.
    corner = x[:, 0, 0, 0]
    np.testing.assert_array_equal(corner > 0, d == 1)


def test_derived_thick_strokes_cover_the_plain_ones(digits_dir):
    config = data_config(data_dir=digits_dir, domains=("mnist", "mnist_thick", "mnist_thin"))
    ev = multi_domain.multi_domain_dataset(config, "test", batch_size=1000, training=False, seed=0)
    batches = list(ev.take(3).as_numpy_iterator())
    plain, thick, thin = (b["x"] for b in batches)
    assert [int(b["domain"][0]) for b in batches] == [0, 1, 2]
    np.testing.assert_array_equal(batches[0]["y"], batches[1]["y"])
    assert (thick >= plain - 1e-6).all() and (thin <= plain + 1e-6).all()
    assert thick.mean() > plain.mean() > thin.mean()
