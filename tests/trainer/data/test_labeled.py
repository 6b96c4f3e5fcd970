"""The images and labeled kinds: one domain's images, with class ids where cGAN needs them."""

import numpy as np
import pytest
from PIL import Image

from tests.trainer.data.conditional_data import build_digits, data_config
from trainer.data import labeled


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    return build_digits(tmp_path_factory.mktemp("digits"), domains=("mnist",))


def test_labeled_kind_refuses_a_domain_without_labels(digits_dir, tmp_path):
    config = data_config(data_dir=digits_dir, domain_a="mnist", batch_size=4)
    b = next(iter(labeled.labeled_dataset(config, "test", batch_size=4, training=False, seed=0)))
    assert b["x"].shape == (4, 16, 16, 3) and set(np.asarray(b["y"])) <= set(range(10))
    images = labeled.images_dataset(config, "train", batch_size=4, training=True, seed=0)
    assert set(next(iter(images))) == {"x"}
    # A method with n_critic critic updates per step gets that many batches at once.
    critic = data_config(data_dir=digits_dir, domain_a="mnist", hparams={"n_critic": 3})
    many = labeled.labeled_dataset(critic, "train", batch_size=4, training=True, seed=0)
    assert next(iter(many))["x"].shape[0] == 12
    (tmp_path / "trainA").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "trainA" / "a.png")
    folder = data_config(method="cgan", dataset="folder", data_dir=str(tmp_path), domain_a="A")
    with pytest.raises(ValueError, match="has none"):
        labeled.labeled_dataset(folder, "train", batch_size=1, training=True, seed=0)
