"""pix2pix: the U-Net's dropout is on only while training, the PatchGAN's receptive fields are
the paper's, the loss ablation changes who trains, and the a2b path exports deterministically."""

import numpy as np
import pytest
import tensorflow as tf

from tests.trainer.methods.conditional_testing import (
    assert_every_player_moves,
    assert_fp32_parity,
    export_declared,
    make_config,
)
from trainer.methods.pix2pix import Pix2Pix
from trainer.networks.unet import pair_discriminator, receptive_field, unet_generator

TINY = dict(filters=4, patch_size=16)


def config(image_size=16, **hparams):
    return make_config(Pix2Pix, "pix2pix", image_size=image_size, **{**TINY, **hparams})


def batch(size=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (2, size, size, 3)).astype("float32")
    return {
        "x_a": tf.constant(x),
        "x_b": tf.constant(-x),
        "y_a": tf.constant([1, 2], tf.int64),
        "y_b": tf.constant([1, 2], tf.int64),
    }


def test_paper_choices_are_the_defaults():
    hp = Pix2Pix.hparam_specs()
    assert (hp["lambda_l1"].default, hp["lr"].default, hp["beta_1"].default) == (100, 2e-4, 0.5)
    assert (hp["patch_size"].default, hp["objective"].default) == (70, "cgan_l1")
    assert (hp["dropout"].default, hp["gan_loss"].default) == (0.5, "vanilla")
    assert Pix2Pix.DATA == "paired"


@pytest.mark.parametrize("patch", [1, 16, 70])
def test_discriminator_receptive_field_is_the_flag(patch):
    disc = pair_discriminator(32, patch, in_channels=6, filters=4)
    assert receptive_field(disc) == patch
    assert disc.input_shape == (None, 32, 32, 6)
    with pytest.raises(ValueError, match="1, 16, 70, 286"):
        pair_discriminator(32, 34)
    with pytest.raises(ValueError, match="--patch_size=1 or 16"):
        pair_discriminator(16, 70)


def test_unet_dropout_is_on_while_training_only():
    gen = unet_generator(16, filters=4)
    assert [layer.name for layer in gen.layers if "dropout" in layer.name] == [
        "up3_dropout",
        "up2_dropout",
        "up1_dropout",
    ]
    # Skips: every decoder map is concatenated with the encoder map of its size.
    assert gen.get_layer("up1_skip").output.shape[1] == 8
    x = batch()["x_a"]
    tf.random.set_seed(0)
    assert not np.allclose(gen(x, training=True), gen(x, training=True))
    np.testing.assert_array_equal(gen(x, training=False), gen(x, training=False))
    with pytest.raises(ValueError, match="power of two"):
        unet_generator(24)


@pytest.mark.parametrize(
    "objective, players, disc_channels",
    [("cgan_l1", {"gen", "disc"}, 6), ("gan", {"gen", "disc"}, 3), ("l1", {"gen"}, None)],
)
def test_objective_ablation_decides_who_trains(objective, players, disc_channels):
    tf.random.set_seed(0)
    model = Pix2Pix(config(objective=objective))
    assert set(model.players()) == players
    if disc_channels:
        assert model.disc.input_shape[-1] == disc_channels
    model.make_optimizers(total_steps=10)
    out = assert_every_player_moves(model, batch())
    if objective == "cgan_l1":
        expected = out["g_adv"] + 100 * out["l1"]
        np.testing.assert_allclose(float(out["gen_loss"]), float(expected), rtol=1e-5)
    if objective == "gan":
        np.testing.assert_allclose(float(out["gen_loss"]), float(out["g_adv"]), rtol=1e-6)


def test_l1_only_learns_a_fixed_pair():
    tf.random.set_seed(0)
    model = Pix2Pix(config(objective="l1", lr=2e-3, dropout=0.0))
    model.make_optimizers(total_steps=1000)
    step = tf.function(model.train_step)
    data = batch()
    first = float(step(data)["l1"])
    for _ in range(40):
        last = float(step(data)["l1"])
    assert last < 0.8 * first, (first, last)


def test_bad_flags_are_refused():
    with pytest.raises(ValueError, match="cgan_l1, l1, gan"):
        Pix2Pix.validate_config(config(objective="l2"))
    with pytest.raises(ValueError, match="--gradient_penalty"):
        Pix2Pix.validate_config(config(gan_loss="wgan"))
    with pytest.raises(ValueError, match="AtoB, BtoA"):
        Pix2Pix.validate_config(config(direction="left"))


def test_a2b_path_exports_and_is_deterministic(tmp_path):
    model = Pix2Pix(config())
    model.make_optimizers(total_steps=10)
    model.train_step(batch())  # moving batch-norm statistics away from their initial values
    paths = model.translation_paths()
    path = paths["a2b"]
    assert path.input_names() == ["image"] and path.output_names() == ["translated"]
    assert (path.source_domain, path.target_domain) == ("mnist", "mnist_m")
    x = batch(seed=1)["x_a"]
    np.testing.assert_array_equal(path.model(x, training=False), model.translate(x))
    result = export_declared(paths, str(tmp_path))
    assert_fp32_parity(result)


def side_by_side_folder(root, n=6, size=24):
    """ROOT/train/ and ROOT/val/ of A|B pairs whose B half is A inverted."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 256, (size, size, 3), np.uint8)
            Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(root / split / f"{i}.png")
    return root


@pytest.mark.slow
def test_flagfile_on_a_folder_of_pairs_trains_evaluates_and_exports(run_module, tmp_path):
    """`--flagfile=pix2pix.flags --dataset=folder` as a user runs it: the flagfile's digit
    domains give way to the pairs' halves, --direction=BtoA makes B the source, and the
    evaluation scores L1/PSNR against the val/ pairs' other halves."""
    import json

    from tests.test_flagfiles import default_formats

    data = side_by_side_folder(tmp_path / "facades")
    run = tmp_path / "run"
    proc = run_module(
        "trainer.main",
        "--flagfile=pix2pix.flags",
        "--dataset=folder",
        f"--data_dir={data}",
        "--direction=BtoA",
        f"--model_dir={run}",
        "--image_size=16",
        "--batch_size=2",
        "--train_steps=2",
        "--checkpoint_every=2",
        "--steps_per_loop=2",
        "--log_every=2",
        "--sample_every=0",
        *(f"--{k}={v}" for k, v in {**Pix2Pix.SMOKE_HPARAMS, **TINY}.items()),
        f"--export_formats={','.join(default_formats())}",
        timeout=1200,
    )
    assert "Trained to step 2" in proc.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    a2b = metrics["directions"]["a2b"]
    assert (a2b["source"], a2b["target"]) == ("B", "A")
    assert a2b["examples"] == 6 and a2b["l1"] is not None and a2b["psnr"] is not None
    # The halves are each other's inverse: doing nothing is as far from the target as can be.
    base = metrics["baselines"]["a2b"]
    assert base["identity_l1"] > 0.3 and a2b["domain_score"] is not None
    from export import metadata

    meta = json.loads((run / "export" / metadata.METADATA_FILE).read_text())
    assert {a["status"] for a in meta["artifacts"]} <= {metadata.OK, metadata.BELOW_BOUND}


def test_a_folder_half_that_does_not_exist_is_named(tmp_path):
    from trainer.data import load_domain

    data = side_by_side_folder(tmp_path / "pairs", n=2)
    with pytest.raises(FileNotFoundError, match="domain 'C'"):
        load_domain("folder", "C", "test", data_dir=str(data), image_size=16)
    half = load_domain("folder", "B", "test", data_dir=str(data), image_size=16)
    images = np.stack([ex["image"] for ex in half.dataset.as_numpy_iterator()])
    whole = load_domain("folder", "A", "test", data_dir=str(data), image_size=16)
    a = np.stack([ex["image"] for ex in whole.dataset.as_numpy_iterator()])
    assert images.shape == (2, 16, 16, 3) and not half.has_labels
    np.testing.assert_allclose(images.astype(int), 255 - a.astype(int), atol=2)
