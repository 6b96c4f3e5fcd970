"""Embedded digit domains, image folders, TFDS catalog loading and the input pipelines."""

import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from trainer import config as config_lib
from trainer import data, imaging
from trainer.data import digit_domains, folders


def _digest(images):
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


# -- digit domains -----------------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["mnist", "mnist_m", "digits", "mnist_0_4", "mnist_5_9"])
def test_domain_shapes_ranges_labels(digits_data_dir, domain):
    for split, expected in [("train", None), ("test", None)]:
        images, labels = data.load_arrays("digits", domain, split, data_dir=digits_data_dir)
        assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
        assert labels.dtype == np.int64 and len(labels) == len(images)
        assert images.max() > 200 and images.min() < 30  # real contrast, not a blank image
        classes = set(np.unique(labels))
        if domain == "mnist_0_4":
            assert classes == {0, 1, 2, 3, 4}
        elif domain == "mnist_5_9":
            assert classes == {5, 6, 7, 8, 9}
        else:
            assert classes == set(range(10))
        del expected
    train, _ = data.load_arrays("digits", domain, "train", data_dir=digits_data_dir)
    test, _ = data.load_arrays("digits", domain, "test", data_dir=digits_data_dir)
    train_rows = {hashlib.md5(x.tobytes()).digest() for x in train}
    assert not any(hashlib.md5(x.tobytes()).digest() in train_rows for x in test)


def test_split_sizes(digits_data_dir):
    sizes = {
        d: [
            data.load_domain("digits", d, s, data_dir=digits_data_dir).num_examples
            for s in ("train", "test")
        ]
        for d in ("mnist", "digits", "mnist_0_4", "mnist_5_9")
    }
    assert sizes["mnist"] == [4000, 1000]
    assert sizes["digits"] == [1437, 360]
    assert np.add(sizes["mnist_0_4"], sizes["mnist_5_9"]).tolist() == [4000, 1000]


def test_builder_is_deterministic(digits_data_dir, tmp_path):
    """A second build in another data_dir gives byte-identical images and labels."""
    other = data.digits_builder("mnist_5_9", str(tmp_path))
    assert other.is_prepared()
    for split in ("train", "test"):
        a = data.load_arrays("digits", "mnist_5_9", split, data_dir=digits_data_dir)
        b = data.load_arrays("digits", "mnist_5_9", split, data_dir=str(tmp_path))
        assert _digest(a[0]) == _digest(b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_builder_matches_arrays_and_mnist_m_is_photo_blend(digits_data_dir):
    built, labels = data.load_arrays("digits", "mnist_m", "test", data_dir=digits_data_dir)
    direct, direct_labels = digit_domains.domain_arrays("mnist_m", "test")

    # TFDS stores examples in its own (deterministic) order: compare as sets of (image, label).
    def pairs(images, labels):
        return sorted(
            (hashlib.md5(x.tobytes()).hexdigest(), int(y)) for x, y in zip(images, labels)
        )

    assert pairs(built, labels) == pairs(direct, direct_labels)
    mnist, mnist_labels = data.load_arrays("digits", "mnist", "test", data_dir=digits_data_dir)
    # Same digits in the same stored order, new texture.
    np.testing.assert_array_equal(labels, mnist_labels)
    assert not np.array_equal(built, mnist)
    # Colour: channels differ (photo texture), unlike the grey MNIST source.
    assert np.abs(built[..., 0].astype(int) - built[..., 1]).mean() > 3
    assert np.abs(mnist[..., 0].astype(int) - mnist[..., 1]).max() == 0


def test_uci_digits_are_upscaled_low_resolution():
    images, labels = digit_domains.uci_digits_arrays()
    assert images.shape == (1797, 32, 32) and labels.max() == 9
    assert images[:, :4].max() == 0  # the margin MNIST digits have


def test_resize_to_image_size_uses_the_one_preprocessing(digits_data_dir):
    native, _ = data.load_arrays("digits", "mnist_m", "test", data_dir=digits_data_dir, limit=5)
    for size in (16, 48):
        images, _ = data.load_arrays(
            "digits", "mnist_m", "test", data_dir=digits_data_dir, image_size=size, limit=5
        )
        assert images.shape == (5, size, size, 3) and images.dtype == np.uint8
        expected = np.stack([imaging.fit(x, size) for x in native])
        np.testing.assert_array_equal(images, expected)


def test_unknown_domain_lists_valid_ones(digits_data_dir):
    with pytest.raises(ValueError, match="mnist_m"):
        data.load_domain("digits", "svhn", "train", data_dir=digits_data_dir)
    with pytest.raises(ValueError, match="train and test"):
        digit_domains.domain_arrays("mnist", "validation")


# -- pipelines ---------------------------------------------------------------------------------


def _unpaired(digits_data_dir, **kwargs):
    a = data.load_domain("digits", "mnist", "train", data_dir=digits_data_dir)
    b = data.load_domain("digits", "mnist_m", "train", data_dir=digits_data_dir)
    return data.unpaired_dataset(a, b, batch_size=4, seed=3, shuffle_buffer=64, **kwargs)


def test_unpaired_batches(digits_data_dir):
    batch = next(iter(_unpaired(digits_data_dir)))
    assert set(batch) == {"x_a", "y_a", "x_b", "y_b"}
    for key in ("x_a", "x_b"):
        x = batch[key].numpy()
        assert x.shape == (4, 32, 32, 3) and x.dtype == np.float32
        assert x.min() >= -1.0 and x.max() <= 1.0 and x.min() < -0.9
    assert batch["y_a"].shape == (4,) and batch["y_a"].dtype.name == "int64"
    # The two streams are shuffled independently: not the same digits in the same order.
    assert not np.array_equal(batch["y_a"].numpy(), batch["y_b"].numpy()) or not np.allclose(
        batch["x_a"].numpy().mean(-1), batch["x_b"].numpy().mean(-1), atol=0.2
    )


def test_pipeline_is_reproducible_and_augment_changes_pixels(digits_data_dir):
    first = [b["x_a"].numpy() for b in _unpaired(digits_data_dir).take(3)]
    again = [b["x_a"].numpy() for b in _unpaired(digits_data_dir).take(3)]
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    aug = [b["x_a"].numpy() for b in _unpaired(digits_data_dir, augment=True, flip=True).take(3)]
    aug_again = [
        b["x_a"].numpy() for b in _unpaired(digits_data_dir, augment=True, flip=True).take(3)
    ]
    np.testing.assert_array_equal(np.stack(aug), np.stack(aug_again))
    assert not np.allclose(np.stack(aug), np.stack(first))
    assert np.stack(aug).min() >= -1.0 and np.stack(aug).max() <= 1.0


def _config(data_dir, method="unit", hparams=None, **data_kwargs):
    return config_lib.Config(
        method=method,
        data=config_lib.DataConfig(data_dir=data_dir, **data_kwargs),
        train=config_lib.TrainConfig(),
        eval=config_lib.EvalConfig(),
        hparams=config_lib.HParams(hparams or {}),
    )


def test_eval_pipeline_sees_each_image_once(digits_data_dir):
    config = _config(digits_data_dir, domain_a="mnist_5_9", domain_b="mnist_0_4")
    ds = data.make_dataset(config, "unpaired", "test", batch_size=64, training=False, seed=0)
    n = sum(int(b["x_a"].shape[0]) for b in ds)
    sizes = [
        data.load_domain("digits", d, "test", data_dir=digits_data_dir).num_examples
        for d in ("mnist_5_9", "mnist_0_4")
    ]
    assert n == min(sizes) == 485  # one pass; the shorter domain ends the zipped pass
    assert -1 not in np.concatenate([b["y_a"].numpy() for b in ds])  # evaluation keeps labels


def test_unknown_data_kind_lists_the_kinds(digits_data_dir):
    assert set(data.KINDS) == {"unpaired"}
    with pytest.raises(ValueError, match=r"Unknown data kind 'single'.*unpaired"):
        data.make_dataset(
            _config(digits_data_dir), "single", "train", batch_size=2, training=True, seed=0
        )


@pytest.mark.parametrize("uda", [False, True])
def test_training_batches_carry_no_target_labels(digits_data_dir, uda):
    """Unpaired methods learn without labels; a UDA head sees the source labels only."""
    config = _config(digits_data_dir, hparams={"uda": uda})
    ds = data.make_dataset(config, "unpaired", "train", batch_size=16, training=True, seed=1)
    batches = list(ds.take(4).as_numpy_iterator())
    y_b = np.concatenate([b["y_b"] for b in batches])
    y_a = np.concatenate([b["y_a"] for b in batches])
    assert np.all(y_b == -1), "target-domain labels reached a training batch"
    if uda:
        assert np.all((y_a >= 0) & (y_a < 10))
    else:
        assert np.all(y_a == -1), "source labels reached a run that does not train on them"


def test_to_float_matches_imaging():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    f = data.to_float(x).numpy()
    assert f.min() == -1.0 and f.max() == 1.0
    np.testing.assert_array_equal(f, imaging.to_float(x))
    np.testing.assert_array_equal(imaging.to_uint8(f), x)


# -- image folders ------------------------------------------------------------------------------


@pytest.fixture
def image_root(tmp_path):
    rng = np.random.default_rng(0)
    a, b = tmp_path / "trainA", tmp_path / "trainB"
    a.mkdir()
    b.mkdir()
    Image.fromarray(rng.integers(0, 255, (40, 60), dtype=np.uint8), "L").save(a / "grey.png")
    Image.fromarray(rng.integers(0, 255, (50, 30, 4), dtype=np.uint8), "RGBA").save(a / "rgba.png")
    Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).convert("P").save(
        a / "palette.png"
    )
    Image.fromarray(rng.integers(0, 255, (300, 200, 3), dtype=np.uint8)).save(a / "big.JPG")
    deep = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 200).astype(np.uint16)
    Image.fromarray(deep).save(a / "sixteen_bit.png")
    good = a / "truncated.png"
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    good.write_bytes(good.read_bytes()[:200])
    (a / "not_an_image.jpg").write_text("hello")
    (a / "notes.txt").write_text("ignored: not an image extension")
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(b / f"{i}.png")
    return tmp_path


def test_folder_reader_converts_any_mode_and_skips_corrupt(image_root, caplog):
    d = data.load_domain("folder", "A", "train", data_dir=str(image_root), image_size=24)
    images = np.stack([e["image"] for e in d.dataset.as_numpy_iterator()])
    assert d.num_examples == 5 and images.shape == (5, 24, 24, 3) and images.dtype == np.uint8
    # The 16-bit ramp keeps its full range (not clipped to white).
    names = sorted(os.path.basename(p) for p in folders.scan(str(image_root / "trainA"))[0])
    ramp = images[names.index("sixteen_bit.png")]
    assert ramp.min() < 20 and ramp.max() > 235
    assert not d.has_labels
    assert any("truncated.png" in r.getMessage() for r in caplog.records)
    assert any("Skipped 2 unusable" in r.getMessage() for r in caplog.records)


def _bomb_png():
    """A 69-byte PNG whose header declares 30000 x 30000 pixels."""
    import struct
    import zlib

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", b"\x78\x9c\x03\x00\x00\x00\x00\x01")
        + chunk(b"IEND", b"")
    )


def test_folder_skips_bombs_and_empty_files_by_name(tmp_path, caplog, capsys):
    folder = tmp_path / "trainA"
    folder.mkdir()
    bomb = _bomb_png()
    assert len(bomb) <= 69
    (folder / "bomb.png").write_bytes(bomb)
    (folder / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (12, 12), (10, 200, 30)).save(folder / "good.png")
    d = data.load_domain("folder", "A", "train", data_dir=str(tmp_path), image_size=8)
    images = [e["image"] for e in d.dataset.as_numpy_iterator()]
    assert d.num_examples == 1 and len(images) == 1 and tuple(images[0][0, 0]) == (10, 200, 30)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "bomb.png" in logged and "decompression bomb" in logged.lower()
    assert "empty.jpg" in logged and "0 bytes" in logged
    assert "Skipped 2 unusable image file(s) of 3" in capsys.readouterr().out
    with pytest.raises(folders.CorruptImageError, match=r"2 unusable.*(bomb|empty)"):
        data.load_domain("folder", "A", "train", data_dir=str(tmp_path), strict_images=True)


def test_folder_non_square_image_matches_imaging_load(tmp_path):
    folder = tmp_path / "trainA"
    folder.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (37, 90, 3), dtype=np.uint8)).save(folder / "wide.png")
    d = data.load_domain("folder", "A", "train", data_dir=str(tmp_path), image_size=16)
    (image,) = [e["image"] for e in d.dataset.as_numpy_iterator()]
    np.testing.assert_array_equal(image, imaging.load(str(folder / "wide.png"), 16))


def test_folder_strict_images_names_the_file(image_root):
    with pytest.raises(folders.CorruptImageError, match=r"(truncated|not_an_image)"):
        data.load_domain("folder", "A", "train", data_dir=str(image_root), strict_images=True)


def test_folder_errors_name_the_path(image_root, tmp_path_factory):
    with pytest.raises(FileNotFoundError, match="found domains A, B"):
        data.load_domain("folder", "C", "train", data_dir=str(image_root))
    with pytest.raises(FileNotFoundError, match="testA"):
        data.load_domain("folder", "A", "test", data_dir=str(image_root))
    missing = os.path.join(str(image_root), "nope")
    with pytest.raises(FileNotFoundError, match="nope"):
        data.load_domain("folder", "A", "train", data_dir=missing)
    empty = tmp_path_factory.mktemp("empty")
    (empty / "trainA").mkdir()
    with pytest.raises(FileNotFoundError, match="No images in .*trainA"):
        data.load_domain("folder", "A", "train", data_dir=str(empty))
    with pytest.raises(ValueError, match="--data_dir"):
        data.load_domain("folder", "A", "train", data_dir=None)


def test_multi_domain_folder_layout(tmp_path):
    for domain in ("sunny", "rainy"):
        folder = tmp_path / "train" / domain
        folder.mkdir(parents=True)
        Image.new("RGB", (10, 10), (200, 10, 10)).save(folder / "x.png")
    assert folders.available_domains(str(tmp_path), "train") == ["rainy", "sunny"]
    d = data.load_domain("folder", "rainy", "train", data_dir=str(tmp_path), image_size=8)
    (image,) = [e["image"] for e in d.dataset.as_numpy_iterator()]
    assert tuple(image[0, 0]) == (200, 10, 10)


# -- TFDS catalog ------------------------------------------------------------------------------


def test_catalog_not_prepared_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="tfds build cycle_gan/horse2zebra"):
        data.load_domain("cycle_gan/horse2zebra", "A", "train", data_dir=str(tmp_path))


def test_catalog_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="Unknown --dataset='no_such_dataset_xyz'"):
        data.load_domain("no_such_dataset_xyz", "A", "train", data_dir=str(tmp_path))


def test_catalog_domains_by_name(digits_data_dir):
    """--dataset=tfds reads each domain as a prepared catalog dataset from data_dir."""
    d = data.load_domain("tfds", "digit_domains/mnist_0_4", "test", data_dir=digits_data_dir)
    assert d.has_labels and d.num_classes == 10 and d.num_examples == 515
    with pytest.raises(ValueError, match="no split 'validation'"):
        data.load_domain("tfds", "digit_domains/mnist", "validation", data_dir=digits_data_dir)
