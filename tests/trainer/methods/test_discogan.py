"""DiscoGAN: the paper's defaults, the generator's shape, the losses on known inputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer.methods import build
from trainer.methods.discogan import DiscoGAN
from trainer.networks.discogan_nets import encoder_decoder_generator


def test_paper_defaults():
    hp = DiscoGAN.hparam_specs()
    assert hp["gan_loss"].default == "vanilla"
    assert hp["recon_loss"].default == "l2"
    assert hp["lambda_recon"].default == 1.0
    assert DiscoGAN.OPTIMIZER == "adam"


def test_generator_is_an_encoder_decoder_down_to_4x4_without_skips():
    gen = encoder_decoder_generator(32, filters=4, name="g")
    assert not any(isinstance(layer, keras.layers.Concatenate) for layer in gen.layers)
    sizes = [layer.output.shape[1] for layer in gen.layers if "conv" in layer.name]
    assert min(sizes) == 4 and gen.output_shape == (None, 32, 32, 3)
    with pytest.raises(ValueError, match="power of two"):
        encoder_decoder_generator(24, filters=4)
    with pytest.raises(ValueError, match="--gen_down"):
        encoder_decoder_generator(16, filters=4, n_down=5)


def test_unknown_recon_loss_is_refused_naming_the_choices(method_config):
    with pytest.raises(ValueError, match="--recon_loss='l3'.*l2, l1"):
        build(method_config("discogan", recon_loss="l3"))


def known_networks(model):
    """Generators that halve their input and discriminators that answer a logit of 0."""
    model.gen_ab = model.gen_ba = lambda x, training=False: 0.5 * x
    model.disc_a = model.disc_b = lambda x, training=False: tf.zeros([tf.shape(x)[0], 1])
    return model


@pytest.mark.parametrize("recon", ["l2", "l1"])
def test_generator_terms_on_known_inputs(recon, method_config, random_batch):
    model = known_networks(build(method_config("discogan", recon_loss=recon, lambda_recon=3.0)))
    batch = random_batch()
    x_a, x_b = batch["x_a"].numpy(), batch["x_b"].numpy()
    terms, x_ab, _ = model.generator_terms(batch["x_a"], batch["x_b"])
    assert set(terms) == {"adv_ab", "adv_ba", "recon_a", "recon_b"}
    # Non-saturating GAN at logit 0: -log sigmoid(0) = log 2.
    np.testing.assert_allclose(terms["adv_ab"][1], [np.log(2)] * 2, rtol=1e-6)
    np.testing.assert_allclose(x_ab, 0.5 * x_a, rtol=1e-6)
    # The round trip halves twice: x -> x / 4, off by 3x / 4.
    dist = (lambda d: d**2) if recon == "l2" else np.abs
    for key, x in (("recon_a", x_a), ("recon_b", x_b)):
        weight, value = terms[key]
        assert weight == 3.0
        np.testing.assert_allclose(value, dist(0.75 * x).mean(axis=(1, 2, 3)), rtol=1e-5)
