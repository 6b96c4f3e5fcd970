"""DCGAN networks (Radford et al. 2016), optionally class-conditional.

Generator: z [latent_dim] (and a class one-hot) -> a 4x4 map by a dense projection, then
4x4 stride-2 transposed convolutions halving the width and doubling the size, batch norm and
ReLU, the last one to RGB with tanh. Discriminator: 4x4 stride-2 convolutions doubling the
width from ``filters`` with LeakyReLU(0.2) (no norm on the first) down to 4x4, then one logit.

A conditional discriminator uses the projection of Miyato & Koyama (2018):
``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>``, with phi(x) the flattened last feature map.
"""

import math

import keras

from trainer.layers import make_norm


def num_doublings(image_size):
    """k with image_size == 4 * 2^k: the stride-2 layers between a 4x4 map and the image."""
    n = int(round(math.log2(image_size / 4))) if image_size >= 8 else 0
    if n < 1 or 4 * 2**n != image_size:
        raise ValueError(
            f"--image_size={image_size} does not fit the DCGAN networks: they grow a 4x4 map by "
            "doubling, so the size must be 4 * 2^k (8, 16, 32, 64, 128 ...)."
        )
    return n


def projection_block(h, width, norm, prefix="project"):
    """Dense projection of a vector to a 4x4 x ``width`` map, norm and ReLU.

    No bias before a norm: the norm cancels a per-channel bias, and reshaped to 4x4 a dense bias
    would be a fixed image drawn for every input. The norm and ReLU are named ``<prefix>_norm``
    and ``<prefix>_relu``.
    """
    x = keras.layers.Dense(4 * 4 * width, use_bias=norm == "none", name="project")(h)
    x = keras.layers.Reshape((4, 4, width), name="project_reshape")(x)
    layer = make_norm(norm, name=f"{prefix}_norm")
    x = layer(x) if layer is not None else x
    return keras.layers.ReLU(name=f"{prefix}_relu")(x)


def up_block(x, width, norm, index):
    """A 4x4 stride-2 transposed convolution to ``width`` channels (no bias before a norm),
    norm and ReLU; layers named ``up<index>_*``."""
    x = keras.layers.Conv2DTranspose(
        width, 4, strides=2, padding="same", use_bias=norm == "none", name=f"up{index}_deconv"
    )(x)
    layer = make_norm(norm, name=f"up{index}_norm")
    x = layer(x) if layer is not None else x
    return keras.layers.ReLU(name=f"up{index}_relu")(x)


def image_head(x, channels, name="image"):
    """The output layer: a 4x4 stride-2 transposed convolution to ``channels``, tanh, float32."""
    x = keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same", name="head_deconv")(x)
    return keras.layers.Activation("tanh", dtype="float32", name=name)(x)


def down_trunk(image, filters, norm, n_down):
    """``n_down`` 4x4 stride-2 convolutions doubling the width from ``filters``, norm (none on
    the first, as DCGAN) and LeakyReLU(0.2): the DCGAN discriminator's body."""
    x, width = image, filters
    for i in range(n_down):
        x = keras.layers.Conv2D(width, 4, strides=2, padding="same", name=f"conv{i}")(x)
        layer = make_norm(norm, name=f"conv{i}_norm") if i > 0 else None
        x = layer(x) if layer is not None else x
        x = keras.layers.LeakyReLU(0.2, name=f"conv{i}_lrelu")(x)
        width *= 2
    return x


def dcgan_generator(
    image_size, latent_dim=100, num_classes=0, channels=3, filters=64, norm="batch", name="gen"
):
    """G: ``z`` [latent_dim] (+ ``label``, a class one-hot [num_classes]) -> ``image`` [S,S,C] in [-1, 1].

    The class one-hot is concatenated to z (Mirza & Osindero 2014).
    """
    n_up = num_doublings(image_size)
    z = keras.Input((latent_dim,), name="z")
    inputs, h = [z], z
    if num_classes:
        label = keras.Input((num_classes,), name="label")
        inputs.append(label)
        h = keras.layers.Concatenate(name="z_class")([z, label])
    width = filters * 2 ** (n_up - 1)
    x = projection_block(h, width, norm)
    for i in range(n_up - 1):
        width //= 2
        x = up_block(x, width, norm, i)
    out = image_head(x, channels)
    return keras.Model(inputs if num_classes else z, out, name=name)


def dcgan_discriminator(
    image_size, num_classes=0, channels=3, filters=64, norm="batch", name="disc"
):
    """D: ``image`` (+ ``label`` one-hot) -> one logit [1] per image, float32.

    With ``num_classes`` the class enters by projection (see the module docstring).
    """
    image = keras.Input((image_size, image_size, channels), name="image")
    x = down_trunk(image, filters, norm, num_doublings(image_size))
    features = keras.layers.Flatten(name="features")(x)
    logit = keras.layers.Dense(1, name="psi")(features)
    if not num_classes:
        out = keras.layers.Activation("linear", dtype="float32", name="logits")(logit)
        return keras.Model(image, out, name=name)
    label = keras.Input((num_classes,), name="label")
    embed = keras.layers.Dense(features.shape[-1], use_bias=False, name="embed")(label)
    projection = keras.layers.Dot(axes=1, name="projection")([embed, features])
    logit = keras.layers.Add(name="logit_sum")([logit, projection])
    out = keras.layers.Activation("linear", dtype="float32", name="logits")(logit)
    return keras.Model([image, label], out, name=name)
