"""ComboGAN's per-domain encoder and decoder (Anoosheh et al. 2018, arXiv 1712.06909).

The CycleGAN ResNet generator (``generators.resnet_generator``) cut in two, as the paper does:
the encoder is the stem, the downsampling and the first half of the residual blocks; the
decoder is the other half of the blocks, the upsampling and the tanh head. Every domain has one
of each, all of one shape, so any encoder feeds any decoder through the latent code.
"""

import keras

from trainer.layers import ReflectionPad2D, ResidualBlock
from trainer.networks.generators import check_image_size, conv_stem, norm_act


def split_blocks(n_blocks):
    """(encoder blocks, decoder blocks): the first half to the encoder, the rest (the larger
    half when ``n_blocks`` is odd) to the decoder."""
    return n_blocks // 2, n_blocks - n_blocks // 2


def code_shape(image_size, filters, n_down):
    """Shape of the latent code between an encoder and a decoder."""
    side = image_size // 2**n_down
    return (side, side, filters * 2**n_down)


def resnet_encoder(
    image_size, channels=3, filters=64, n_blocks=4, n_down=2, norm="instance", name="encoder"
):
    """Image [S,S,C] in [-1, 1] -> code: c7s1-f, ``n_down`` x d(2f ...), ``n_blocks`` x R."""
    check_image_size(image_size, n_down, f"encoder of {name}")
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x, width = conv_stem(inputs, filters, n_down, norm)
    for i in range(n_blocks):
        x = ResidualBlock(width, norm=norm, name=f"res{i}")(x)
    return keras.Model(inputs, x, name=name)


def resnet_decoder(
    image_size, channels=3, filters=64, n_blocks=5, n_down=2, norm="instance", name="decoder"
):
    """Code -> image in [-1, 1]: ``n_blocks`` x R, ``n_down`` x u(f/2 ...), c7s1-C, tanh (float32)."""
    check_image_size(image_size, n_down, f"decoder of {name}")
    shape = code_shape(image_size, filters, n_down)
    inputs = keras.Input(shape, name="code")
    x, width = inputs, shape[-1]
    for i in range(n_blocks):
        x = ResidualBlock(width, norm=norm, name=f"res{i}")(x)
    for i in range(n_down):
        width //= 2
        x = keras.layers.Conv2DTranspose(width, 3, strides=2, padding="same", name=f"up{i}_deconv")(
            x
        )
        x = norm_act(x, norm, f"up{i}")
    x = ReflectionPad2D(3, name="head_pad")(x)
    x = keras.layers.Conv2D(channels, 7, name="head_conv")(x)
    outputs = keras.layers.Activation("tanh", dtype="float32", name="translated")(x)
    return keras.Model(inputs, outputs, name=name)
