"""pix2pix networks (Isola et al. 2017): the U-Net generator and the pair discriminators.

U-Net: encoder C64-C128-C256-C512-C512-C512-C512-C512 (4x4 stride-2 convolutions, LeakyReLU
0.2, norm on all but the outermost and innermost), decoder of 4x4 stride-2 transposed
convolutions with ReLU mirroring it, each concatenated with the encoder map of the same size
(the skips), dropout 0.5 on the three innermost decoder layers, tanh output. At 256 px it has
the paper's 8 downsamplings to 1x1; smaller images take log2(size) of them.

Discriminators see a pair: the input image x and a real or generated output y, concatenated on
channels (6 channels), or y alone (3) for the paper's unconditional ablation. Their receptive
field is chosen by ``patch_size`` as in the paper's ablation: 1 (PixelGAN: 1x1 convolutions),
16, 70 (the default PatchGAN) or 286 px (1, 3 or 5 stride-2 layers of the PatchGAN).
"""

import math

import keras

from trainer.layers import make_norm
from trainer.networks.discriminators import patch_discriminator

PATCH_LAYERS = {16: 1, 70: 3, 286: 5}
PATCH_SIZES = (1, *PATCH_LAYERS)


def unet_depth(image_size, requested=-1):
    """Downsamplings of the U-Net: ``requested``, or log2(size) capped at the paper's 8."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(
            f"--image_size={image_size} does not fit the U-Net: it halves the image to 1x1, so "
            "the size must be a power of two >= 8 (16, 32, 64, 128, 256 ...)."
        )
    depth = min(int(math.log2(image_size)), 8) if requested == -1 else int(requested)
    if not 2 <= depth <= int(math.log2(image_size)):
        raise ValueError(
            f"--unet_depth={requested} must be between 2 and {int(math.log2(image_size))} at "
            f"image_size {image_size} (-1 = as deep as the paper's, to 1x1 or 8 layers)."
        )
    return depth


def unet_generator(
    image_size, channels=3, filters=64, depth=-1, norm="batch", dropout=0.5, name="gen"
):
    """G: ``image`` [S,S,C] -> ``translated`` [S,S,C] in [-1, 1] (see the module docstring).

    Dropout is active only when called with ``training=True``: the exported graph is
    deterministic.
    """
    depth = unet_depth(image_size, depth)
    widths = [filters * min(2**i, 8) for i in range(depth)]
    image = keras.Input((image_size, image_size, channels), name="image")
    skips, x = [], image
    for i, width in enumerate(widths):
        if i > 0:
            x = keras.layers.LeakyReLU(0.2, name=f"down{i}_lrelu")(x)
        x = keras.layers.Conv2D(width, 4, strides=2, padding="same", name=f"down{i}_conv")(x)
        layer = make_norm(norm, name=f"down{i}_norm") if 0 < i < depth - 1 else None
        x = layer(x) if layer is not None else x
        skips.append(x)
    for i in reversed(range(1, depth)):
        x = keras.layers.ReLU(name=f"up{i}_relu")(x)
        x = keras.layers.Conv2DTranspose(
            widths[i - 1], 4, strides=2, padding="same", name=f"up{i}_deconv"
        )(x)
        layer = make_norm(norm, name=f"up{i}_norm")
        x = layer(x) if layer is not None else x
        if dropout > 0 and i >= depth - 3:
            x = keras.layers.Dropout(dropout, name=f"up{i}_dropout")(x)
        x = keras.layers.Concatenate(name=f"up{i}_skip")([x, skips[i - 1]])
    x = keras.layers.ReLU(name="up0_relu")(x)
    x = keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same", name="up0_deconv")(x)
    out = keras.layers.Activation("tanh", dtype="float32", name="translated")(x)
    return keras.Model(image, out, name=name)


def pair_discriminator(
    image_size,
    patch_size=70,
    in_channels=6,
    filters=64,
    norm="batch",
    logits_bias=True,
    name="disc",
):
    """D: ``pair`` [S,S,in_channels] -> logits per patch of ``patch_size`` px (float32).

    ``logits_bias=False``: no bias on the last layer (a WGAN critic's loss cannot see it)."""
    if patch_size == 1:
        pair = keras.Input((image_size, image_size, in_channels), name="image")
        x = keras.layers.Conv2D(filters, 1, name="conv0")(pair)
        x = keras.layers.LeakyReLU(0.2, name="conv0_lrelu")(x)
        x = keras.layers.Conv2D(filters * 2, 1, name="conv1")(x)
        layer = make_norm(norm, name="conv1_norm")
        x = layer(x) if layer is not None else x
        x = keras.layers.LeakyReLU(0.2, name="conv1_lrelu")(x)
        x = keras.layers.Conv2D(1, 1, use_bias=logits_bias, name="logits_conv")(x)
        out = keras.layers.Activation("linear", dtype="float32", name="logits")(x)
        return keras.Model(pair, out, name=name)
    if patch_size not in PATCH_LAYERS:
        raise ValueError(
            f"--patch_size={patch_size} is not one of the paper's receptive fields: choose "
            f"{', '.join(map(str, PATCH_SIZES))}."
        )
    n_layers = PATCH_LAYERS[patch_size]
    smallest = 2**n_layers * 3
    if image_size < smallest:
        fits = [str(p) for p in PATCH_SIZES if p == 1 or 2 ** PATCH_LAYERS[p] * 3 <= image_size]
        raise ValueError(
            f"--patch_size={patch_size} needs --image_size >= {smallest}; at {image_size} px "
            f"choose --patch_size={' or '.join(fits)}."
        )
    return patch_discriminator(
        image_size,
        channels=in_channels,
        filters=filters,
        n_layers=n_layers,
        norm=norm,
        logits_bias=logits_bias,
        name=name,
    )


def receptive_field(model):
    """Receptive field (px) of one output logit, from the model's convolutions."""
    rf, jump = 1, 1
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            k, s = layer.kernel_size[0], layer.strides[0]
            rf += (k - 1) * jump
            jump *= s
    return rf
