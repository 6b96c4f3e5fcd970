"""The paired kind: aligned digit renderings and A|B side-by-side folders, both directions,
joint jitter, and clear errors for files that are not pairs."""

import numpy as np
import pytest
from PIL import Image

from tests.trainer.data.conditional_data import build_digits, data_config
from trainer.data import paired

ONE_LEVEL = 1.01 / 127.5


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    return build_digits(tmp_path_factory.mktemp("digits"))


def first(ds):
    return next(iter(ds.as_numpy_iterator()))


def test_digit_pairs_are_the_same_digits(digits_dir):
    config = data_config(data_dir=digits_dir, domain_a="mnist", domain_b="mnist_inverted")
    b = first(paired.paired_dataset(config, "test", batch_size=4, training=False, seed=0))
    assert b["x_a"].shape == b["x_b"].shape == (4, 16, 16, 3)
    # mnist_inverted is 255 - mnist: in [-1, 1] that is -x (to the 1/255 rounding of the resize).
    np.testing.assert_allclose(b["x_b"], -b["x_a"], atol=ONE_LEVEL)
    np.testing.assert_array_equal(b["y_a"], b["y_b"])
    # Training batches are shuffled, yet still aligned pair by pair.
    t = first(paired.paired_dataset(config, "train", batch_size=4, training=True, seed=3))
    np.testing.assert_allclose(t["x_b"], -t["x_a"], atol=ONE_LEVEL)
    # BtoA swaps source and target.
    back = data_config(
        data_dir=digits_dir,
        domain_a="mnist",
        domain_b="mnist_inverted",
        hparams={"direction": "BtoA"},
    )
    r = first(paired.paired_dataset(back, "test", batch_size=4, training=False, seed=0))
    np.testing.assert_allclose(r["x_a"], b["x_b"], atol=1e-6)


def test_unaligned_digit_domains_are_refused():
    with pytest.raises(ValueError, match="no aligned partner"):
        paired.digit_pairs(data_config(domain_a="mnist", domain_b="digits"), "train")
    with pytest.raises(ValueError, match="both mnist"):
        paired.digit_pairs(data_config(domain_a="mnist", domain_b="mnist"), "train")


def write_pairs(folder, n=3, size=(24, 12)):
    folder.mkdir(parents=True)
    w, h = size
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, : w // 2] = (200, 10 * i, 0)  # A: red
        img[:, w // 2 :] = (0, 10 * i, 200)  # B: blue
        Image.fromarray(img).save(folder / f"{i}.png")


def test_side_by_side_folders_split_into_a_and_b(tmp_path):
    write_pairs(tmp_path / "train")
    write_pairs(tmp_path / "val", n=2)
    config = data_config(dataset="folder", data_dir=str(tmp_path), image_size=8, batch_size=2)
    b = first(paired.paired_dataset(config, "test", batch_size=2, training=False, seed=0))
    assert b["x_a"].shape == (2, 8, 8, 3)
    assert (b["x_a"][..., 0] > 0.5).all() and (b["x_a"][..., 2] < -0.9).all()
    assert (b["x_b"][..., 2] > 0.5).all() and (b["x_b"][..., 0] < -0.9).all()
    assert (b["y_a"] == -1).all()
    flipped = data_config(
        dataset="folder", data_dir=str(tmp_path), image_size=8, hparams={"direction": "BtoA"}
    )
    r = first(paired.paired_dataset(flipped, "test", batch_size=2, training=False, seed=0))
    np.testing.assert_array_equal(r["x_a"], b["x_b"])
    # Jitter crops and flips both halves alike: a pair stays a pair.
    jitter = data_config(
        dataset="folder", data_dir=str(tmp_path), image_size=8, augment=True, flip=True
    )
    t = first(paired.paired_dataset(jitter, "train", batch_size=2, training=True, seed=0))
    assert t["x_a"].shape == (2, 8, 8, 3)
    np.testing.assert_allclose(t["x_a"][..., 1], t["x_b"][..., 1], atol=1e-5)


@pytest.mark.parametrize(
    "size, message", [((25, 12), "width must be even"), ((12, 12), "single image")]
)
def test_files_that_are_not_pairs_are_named(tmp_path, size, message):
    write_pairs(tmp_path / "train", n=1)
    bad = tmp_path / "train" / "bad.png"
    Image.new("RGB", size).save(bad)
    config = data_config(dataset="folder", data_dir=str(tmp_path))
    with pytest.raises(paired.PairError, match=message) as e:
        paired.paired_dataset(config, "train", batch_size=1, training=True, seed=0)
    assert "bad.png" in str(e.value)


def test_missing_split_folder_says_what_is_expected(tmp_path):
    write_pairs(tmp_path / "train", n=1)
    config = data_config(dataset="folder", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="test/ or val/"):
        paired.paired_dataset(config, "test", batch_size=1, training=False, seed=0)
    with pytest.raises(ValueError, match="--dataset=digits .* or --dataset=folder"):
        paired.paired_dataset(
            data_config(dataset="cycle_gan/x"), "train", batch_size=1, training=True, seed=0
        )
