"""DiscoGAN's generator (Kim et al. 2017): an encoder-decoder without skip connections.

Encoder: 4x4 stride-2 convolutions doubling the width from ``filters`` (capped at 8x), each
followed by LeakyReLU(0.2), with norm on all but the first. Decoder: 4x4 stride-2 transposed
convolutions halving the width, each with norm and ReLU, the last one to RGB with tanh. With no
skips every bit of the input has to pass the bottleneck, which is what makes the learned
relation between the domains a mapping of the whole image. The discriminator is the DCGAN one
(``networks.dcgan.dcgan_discriminator``): the encoder, then one logit.
"""

import math

import keras

from trainer.layers import make_norm


def encoder_decoder_depth(image_size, requested=-1):
    """Stride-2 steps of the encoder: ``requested``, or down to a 4x4 map (the paper's four at
    64 px)."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(
            f"--image_size={image_size} does not fit the encoder-decoder generator: it halves "
            "the image to a small map and back, so the size must be a power of two >= 8 "
            "(16, 32, 64, 128 ...)."
        )
    most = int(math.log2(image_size))
    depth = most - 2 if requested == -1 else int(requested)
    if not 1 <= depth <= most:
        raise ValueError(
            f"--gen_down={requested} must be between 1 and {most} at image_size {image_size} "
            "(-1 = down to a 4x4 map)."
        )
    return depth


def encoder_decoder_generator(
    image_size, channels=3, filters=64, n_down=-1, norm="batch", name="gen"
):
    """G: ``image`` [S,S,C] -> ``translated`` [S,S,C] in [-1, 1] (see the module docstring)."""
    depth = encoder_decoder_depth(image_size, n_down)
    widths = [filters * min(2**i, 8) for i in range(depth)]
    image = keras.Input((image_size, image_size, channels), name="image")
    x = image
    for i, width in enumerate(widths):
        x = keras.layers.Conv2D(width, 4, strides=2, padding="same", name=f"down{i}_conv")(x)
        layer = make_norm(norm, name=f"down{i}_norm") if i > 0 else None
        x = layer(x) if layer is not None else x
        x = keras.layers.LeakyReLU(0.2, name=f"down{i}_lrelu")(x)
    for i in reversed(range(1, depth)):
        x = keras.layers.Conv2DTranspose(
            widths[i - 1], 4, strides=2, padding="same", name=f"up{i}_deconv"
        )(x)
        layer = make_norm(norm, name=f"up{i}_norm")
        x = layer(x) if layer is not None else x
        x = keras.layers.ReLU(name=f"up{i}_relu")(x)
    x = keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same", name="up0_deconv")(x)
    out = keras.layers.Activation("tanh", dtype="float32", name="translated")(x)
    return keras.Model(image, out, name=name)
