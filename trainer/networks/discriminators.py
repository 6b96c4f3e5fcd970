"""Discriminators."""

import keras

from trainer.layers import make_norm


def patch_discriminator(
    image_size,
    channels=3,
    filters=64,
    n_layers=3,
    norm="instance",
    logits_bias=True,
    name="discriminator",
):
    """The 70x70 PatchGAN of pix2pix/CycleGAN (for n_layers=3): one logit per image patch.

    Kernel 4, padding 1 as in the reference; at 3 layers and 64 filters it has 2,764,737
    parameters. Outputs raw logits in float32. ``logits_bias=False`` drops the bias of the last
    convolution, which a WGAN critic's loss cannot see (D(fake) - D(real) cancels it).
    """
    # n_layers stride-2 convolutions, then two stride-1 kernel-4 convolutions each remove 1 px.
    min_size = 2**n_layers * 3
    if image_size < min_size:
        raise ValueError(
            f"--image_size={image_size} is too small for a PatchGAN with {n_layers} layers "
            f"(needs >= {min_size}): lower --disc_layers or use larger images."
        )
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = keras.layers.ZeroPadding2D(1, name="conv0_pad")(inputs)
    x = keras.layers.Conv2D(filters, 4, strides=2, name="conv0")(x)
    x = keras.layers.LeakyReLU(0.2, name="conv0_lrelu")(x)
    width = filters
    for i in range(1, n_layers + 1):
        width = filters * min(2**i, 8)
        stride = 2 if i < n_layers else 1
        x = keras.layers.ZeroPadding2D(1, name=f"conv{i}_pad")(x)
        x = keras.layers.Conv2D(width, 4, strides=stride, name=f"conv{i}")(x)
        layer = make_norm(norm, name=f"conv{i}_norm")
        if layer is not None:
            x = layer(x)
        x = keras.layers.LeakyReLU(0.2, name=f"conv{i}_lrelu")(x)
    x = keras.layers.ZeroPadding2D(1, name="logits_pad")(x)
    x = keras.layers.Conv2D(1, 4, use_bias=logits_bias, name="logits_conv")(x)
    outputs = keras.layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
