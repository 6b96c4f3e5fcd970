"""UNIT encoders and decoders (Liu et al. 2017): two of each, sharing their high-level layers.

The shared-latent assumption is built into the weights: the last layers of E1 and E2 are one
sub-model (``shared_enc``) called by both encoders, and the first layers of G1 and G2 are one
sub-model (``shared_dec``) called by both decoders. A checkpoint or an export holds each shared
layer once, and a gradient step through either domain moves them for both.
"""

import keras

from trainer.layers import ReflectionPad2D, ResidualBlock
from trainer.networks.generators import check_image_size, conv_stem, norm_act


def latent_shape(image_size, filters, n_down):
    """Shape of UNIT's spatial latent code z: [S / 2^n_down, S / 2^n_down, filters * 2^n_down]."""
    side = image_size // 2**n_down
    return (side, side, filters * 2**n_down)


def _shared_blocks(shape, n_blocks, norm, name):
    inputs = keras.Input(shape, name="code")
    x = inputs
    for i in range(n_blocks):
        x = ResidualBlock(shape[-1], norm=norm, name=f"res{i}")(x)
    return keras.Model(inputs, x, name=name)


def unit_encoders(
    image_size,
    channels=3,
    filters=64,
    n_down=2,
    enc_blocks=3,
    shared_blocks=1,
    norm="instance",
    names=("enc_a", "enc_b"),
):
    """E1, E2 and their shared top: image [S,S,C] -> latent mean mu (see ``latent_shape``).

    Per domain: c7s1-f, n_down x (conv3 stride 2, doubling), ``enc_blocks`` residual blocks;
    shared: ``shared_blocks`` residual blocks. The output is the posterior mean; UNIT's
    posterior has fixed unit variance, so the sample is ``mu + N(0, I)``.
    Returns ``(enc_a, enc_b, shared_enc)``.
    """
    check_image_size(image_size, n_down, "UNIT encoder")
    if shared_blocks < 1:
        raise ValueError(
            f"--shared_blocks={shared_blocks}: UNIT needs at least one shared block "
            "(the shared latent space); use 1 or more."
        )
    shape = latent_shape(image_size, filters, n_down)
    shared = _shared_blocks(shape, shared_blocks, norm, "shared_enc")
    encoders = []
    for name in names:
        inputs = keras.Input((image_size, image_size, channels), name="image")
        x, width = conv_stem(inputs, filters, n_down, norm, activation="lrelu")
        for i in range(enc_blocks):
            x = ResidualBlock(width, norm=norm, name=f"res{i}")(x)
        mu = shared(x)
        mu = keras.layers.Activation("linear", dtype="float32", name="mu")(mu)
        encoders.append(keras.Model(inputs, mu, name=name))
    return encoders[0], encoders[1], shared


def unit_decoders(
    image_size,
    channels=3,
    filters=64,
    n_down=2,
    dec_blocks=3,
    shared_blocks=1,
    norm="instance",
    names=("dec_a", "dec_b"),
):
    """G1, G2 and their shared bottom: latent z -> image in [-1, 1] (tanh, float32).

    Shared: ``shared_blocks`` residual blocks; per domain: ``dec_blocks`` residual blocks,
    n_down x (transposed conv3 stride 2, halving), c7s1-C, tanh.
    Returns ``(dec_a, dec_b, shared_dec)``.
    """
    check_image_size(image_size, n_down, "UNIT decoder")
    shape = latent_shape(image_size, filters, n_down)
    shared = _shared_blocks(shape, shared_blocks, norm, "shared_dec")
    decoders = []
    for name in names:
        inputs = keras.Input(shape, name="z")
        x = shared(inputs)
        width = shape[-1]
        for i in range(dec_blocks):
            x = ResidualBlock(width, norm=norm, name=f"res{i}")(x)
        for i in range(n_down):
            width //= 2
            x = keras.layers.Conv2DTranspose(
                width, 3, strides=2, padding="same", name=f"up{i}_deconv"
            )(x)
            x = norm_act(x, norm, activation="lrelu", name=f"up{i}")
        x = ReflectionPad2D(3, name="head_pad")(x)
        x = keras.layers.Conv2D(channels, 7, name="head_conv")(x)
        outputs = keras.layers.Activation("tanh", dtype="float32", name="translated")(x)
        decoders.append(keras.Model(inputs, outputs, name=name))
    return decoders[0], decoders[1], shared
