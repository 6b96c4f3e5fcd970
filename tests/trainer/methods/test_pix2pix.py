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
