"""GAN and cGAN: DCGAN networks, every --gan_loss trains, the projection discriminator uses
the class, the gradient penalty on a hand-computed case, and the generate paths export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.trainer.methods.conditional_testing import (
    assert_every_player_moves,
    assert_fp32_parity,
    export_declared,
    make_config,
)
from trainer import losses
from trainer.methods.cgan import CGAN
from trainer.methods.gan import GAN
from trainer.networks.dcgan import dcgan_discriminator, dcgan_generator

TINY = dict(filters=4, latent_dim=8)


def config(cls=GAN, **hparams):
    return make_config(cls, cls.__name__.lower(), **{**TINY, **hparams})


def batch(model, seed=0):
    rng = np.random.default_rng(seed)
    n = 2 * model.hp.n_critic
    return {
        "x": tf.constant(rng.uniform(-1, 1, (n, 16, 16, 3)), tf.float32),
        "y": tf.constant(rng.integers(0, 10, n), tf.int64),
    }


def test_dcgan_defaults():
    hp = GAN.hparam_specs()
    assert (hp["lr"].default, hp["beta_1"].default) == (2e-4, 0.5)
    assert hp["gan_loss"].default == "vanilla" and hp["gradient_penalty"].default == 0
    assert (GAN.DATA, CGAN.DATA) == ("images", "labeled")
    assert {k for k, s in CGAN.hparam_specs().items() if s.shape} >= {
        "latent_dim",
        "filters",
        "num_classes",
    }


def test_gradient_penalty_of_a_linear_critic_is_hand_computable():
    # D(x) = sum(w * x): the gradient is w everywhere, so GP = (||w||_2 - 1)^2 per example.
    w = tf.constant(np.arange(12, dtype="float32").reshape(1, 2, 2, 3) / 10)

    def critic(x, training=True):
        return tf.reduce_sum(w * x, axis=[1, 2, 3])

    real = tf.ones([3, 2, 2, 3])
    fake = -tf.ones([3, 2, 2, 3])
    gp = losses.gradient_penalty(critic, real, fake, seed=(1, 2))
    expected = (np.sqrt(np.sum(np.square(w.numpy()))) - 1.0) ** 2
    np.testing.assert_allclose(gp.numpy(), [expected] * 3, rtol=1e-5)


@pytest.mark.parametrize(
    "cls, hparams",
    [
        (GAN, {}),
        (GAN, {"gan_loss": "lsgan"}),
        (GAN, {"gan_loss": "hinge"}),
        (GAN, {"gan_loss": "wgan", "gradient_penalty": 10.0, "n_critic": 2}),
        (CGAN, {}),
        (CGAN, {"gan_loss": "wgan", "gradient_penalty": 10.0, "n_critic": 2}),
    ],
)
def test_a_step_moves_both_players(cls, hparams):
    tf.random.set_seed(0)
    model = cls(config(cls, **hparams))
    model.make_optimizers(total_steps=10)
    # Under wgan (and hinge, while every logit is inside the margin, as at the start) the
    # critic's output bias cancels between real and fake: no gradient reaches it.
    may_stay = ("psi/bias",) if model.hp.gan_loss in ("wgan", "hinge") else ()
    out = assert_every_player_moves(model, batch(model), may_stay)
    assert int(model.optimizers["disc"].iterations) == model.hp.n_critic
    assert int(model.optimizers["gen"].iterations) == 1
    if model.hp.gradient_penalty:
        expected = out["disc_d"] + model.hp.gradient_penalty * out["gp_d"]
        np.testing.assert_allclose(float(out["disc_loss"]), float(expected), rtol=1e-5)
        # The penalty is per example: no batch norm in the critic.
        norms = [type(layer).__name__ for layer in model.disc.layers]
        assert "BatchNormalization" not in norms and "LayerNormalization" in norms


def test_wgan_without_a_penalty_is_refused():
    with pytest.raises(ValueError, match="--gradient_penalty"):
        GAN.validate_config(config(gan_loss="wgan"))
    with pytest.raises(ValueError, match="vanilla"):
        GAN.validate_config(config(gan_loss="nonsense"))


def test_projection_discriminator_scores_the_class_through_the_embedding():
    disc = dcgan_discriminator(16, num_classes=10, filters=4)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype("float32")
    y0, y1 = np.eye(10, dtype="float32")[[0]], np.eye(10, dtype="float32")[[1]]
    phi = keras.Model(disc.inputs, disc.get_layer("features").output)([x, y0])
    embed = disc.get_layer("embed").kernel.numpy()
    diff = float(np.squeeze(disc([x, y1]) - disc([x, y0])))
    np.testing.assert_allclose(diff, float(np.dot(embed[1] - embed[0], phi[0])), rtol=1e-4)


def test_networks_refuse_sizes_they_cannot_grow_to():
    with pytest.raises(ValueError, match="4 \\* 2\\^k"):
        dcgan_generator(24, 8)
    assert dcgan_generator(8, 8, filters=4).output_shape == (None, 8, 8, 3)


def test_cgan_draws_the_class_it_is_given():
    model = CGAN(config(CGAN))
    a = np.asarray(model.sample(4, classes=[3, 3, 3, 3]))
    b = np.asarray(model.sample(4, classes=[7, 7, 7, 7]))
    assert a.shape == (4, 16, 16, 3) and not np.allclose(a, b)
    np.testing.assert_array_equal(a, np.asarray(model.sample(4, classes=[3, 3, 3, 3])))
    groups = model.sample_images(None)
    assert len(groups["classes"]) == 10


@pytest.mark.parametrize("cls", [GAN, CGAN])
def test_generate_path_exports_with_its_declared_inputs(cls, tmp_path):
    model = cls(config(cls))
    paths = model.translation_paths()
    path = paths["generate"]
    assert [t.name for t in path.model.inputs] == path.input_names()
    assert path.inputs[0].to_metadata([None, 8])["prior"] == {
        "distribution": "normal",
        "mean": 0.0,
        "stddev": 1.0,
    }
    result = export_declared(paths, str(tmp_path))
    assert_fp32_parity(result)
    onnx = next(a for a in result["artifacts"] if a["file"] == "generate.onnx")
    kinds = {s["name"]: s["kind"] for s in onnx["inputs"]}
    assert kinds == ({"z": "noise"} if cls is GAN else {"z": "noise", "label": "onehot"})
    if cls is CGAN:
        (spec,) = [s for s in onnx["inputs"] if s["name"] == "label"]
        assert spec["labels"] == [str(i) for i in range(10)]


@pytest.mark.parametrize("cls", [GAN, CGAN])
def test_critic_and_generator_rates_decay_over_the_same_training_steps(cls):
    # D takes n_critic updates per step; its schedule counts them (TranslationModel
    # .updates_per_step), so at every training step both players have the same rate.
    model = cls(config(cls, n_critic=3, lr=2e-4))
    model.make_optimizers(total_steps=40)
    gen, disc = model.optimizers["gen"], model.optimizers["disc"]

    def rate(opt, iterations):
        opt.iterations.assign(iterations)
        return float(opt.learning_rate)

    for step in (0, 20, 30, 39):
        gen_lr = rate(gen, step)
        np.testing.assert_allclose(rate(disc, 3 * step), gen_lr, rtol=1e-6)
        assert gen_lr == pytest.approx(2e-4 * min(1.0, (40 - step) / 20), rel=1e-5)
