"""Encoders into a spatial latent code, decoders out of it, and a critic of the code.

The UNMT-style method maps both domains through one ``image_encoder`` into one code and back
through a ``image_decoder`` per domain; ``latent_discriminator`` tells the domain from the code
(UNMT and XGAN train their encoders to fool it). The code has UNIT's shape
(``unit_nets.latent_shape``): [S / 2^n_down, S / 2^n_down, filters * 2^n_down].
"""

import keras

from trainer.layers import ReflectionPad2D, ResidualBlock
from trainer.networks.generators import check_image_size, conv_stem, norm_act
from trainer.networks.unit_nets import latent_shape


def image_encoder(
    image_size, channels=3, filters=64, n_down=2, n_blocks=3, norm="instance", name="enc"
):
    """Image [S,S,C] -> code: c7s1-f, n_down x (conv3 stride 2, doubling), ``n_blocks``
    residual blocks (LeakyReLU 0.2, as UNIT's encoders). The code is float32, named ``z``."""
    check_image_size(image_size, n_down, f"encoder {name}")
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x, width = conv_stem(inputs, filters, n_down, norm, activation="lrelu")
    for i in range(n_blocks):
        x = ResidualBlock(width, norm=norm, name=f"res{i}")(x)
    z = keras.layers.Activation("linear", dtype="float32", name="z")(x)
    return keras.Model(inputs, z, name=name)


def image_decoder(
    image_size, channels=3, filters=64, n_down=2, n_blocks=3, norm="instance", name="dec"
):
    """Code -> image in [-1, 1]: ``n_blocks`` residual blocks, n_down x (transposed conv3
    stride 2, halving), c7s1-C, tanh (float32)."""
    check_image_size(image_size, n_down, f"decoder {name}")
    shape = latent_shape(image_size, filters, n_down)
    inputs = keras.Input(shape, name="z")
    x, width = inputs, shape[-1]
    for i in range(n_blocks):
        x = ResidualBlock(width, norm=norm, name=f"res{i}")(x)
    for i in range(n_down):
        width //= 2
        x = keras.layers.Conv2DTranspose(width, 3, strides=2, padding="same", name=f"up{i}_deconv")(
            x
        )
        x = norm_act(x, norm, activation="lrelu", name=f"up{i}")
    x = ReflectionPad2D(3, name="head_pad")(x)
    x = keras.layers.Conv2D(channels, 7, name="head_conv")(x)
    outputs = keras.layers.Activation("tanh", dtype="float32", name="translated")(x)
    return keras.Model(inputs, outputs, name=name)


def latent_discriminator(shape, filters=64, n_layers=2, name="disc_z"):
    """Code [h,w,c] -> a map of domain logits [h,w,1] ("is this the code of an A image?").

    ``n_layers`` 3x3 convolutions (stride 1, LeakyReLU 0.2, no normalization, so the WGAN-GP
    penalty applies per example) then a 1x1 logit: each position judges its own receptive
    field, as a PatchGAN does on images; the adversarial losses average the map.
    """
    inputs = keras.Input(shape, name="z")
    x = inputs
    for i in range(n_layers):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{i}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"conv{i}_lrelu")(x)
    x = keras.layers.Conv2D(1, 1, name="logits_conv")(x)
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)
