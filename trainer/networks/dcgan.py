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


def _ups(image_size):
    n = int(round(math.log2(image_size / 4))) if image_size >= 8 else 0
    if n < 1 or 4 * 2**n != image_size:
        raise ValueError(
            f"--image_size={image_size} does not fit the DCGAN networks: they grow a 4x4 map by "
            "doubling, so the size must be 4 * 2^k (8, 16, 32, 64, 128 ...)."
        )
    return n


def dcgan_generator(
    image_size, latent_dim=100, num_classes=0, channels=3, filters=64, norm="batch", name="gen"
):
    """G: ``z`` [latent_dim] (+ ``label``, a class one-hot [num_classes]) -> ``image`` [S,S,C] in [-1, 1].

    The class one-hot is concatenated to z (Mirza & Osindero 2014).
    """
    n_up = _ups(image_size)
    z = keras.Input((latent_dim,), name="z")
    inputs, h = [z], z
    if num_classes:
        label = keras.Input((num_classes,), name="label")
        inputs.append(label)
        h = keras.layers.Concatenate(name="z_class")([z, label])
    width = filters * 2 ** (n_up - 1)
    x = keras.layers.Dense(4 * 4 * width, use_bias=norm == "none", name="project")(h)
    x = keras.layers.Reshape((4, 4, width), name="project_reshape")(x)
    layer = make_norm(norm, name="project_norm")
    x = layer(x) if layer is not None else x
    x = keras.layers.ReLU(name="project_relu")(x)
    for i in range(n_up - 1):
        width //= 2
        x = keras.layers.Conv2DTranspose(
            width, 4, strides=2, padding="same", use_bias=norm == "none", name=f"up{i}_deconv"
        )(x)
        layer = make_norm(norm, name=f"up{i}_norm")
        x = layer(x) if layer is not None else x
        x = keras.layers.ReLU(name=f"up{i}_relu")(x)
    x = keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same", name="head_deconv")(x)
    out = keras.layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(inputs if num_classes else z, out, name=name)


def dcgan_discriminator(
    image_size, num_classes=0, channels=3, filters=64, norm="batch", name="disc"
):
    """D: ``image`` (+ ``label`` one-hot) -> one logit [1] per image, float32.

    With ``num_classes`` the class enters by projection (see the module docstring).
    """
    n_down = _ups(image_size)
    image = keras.Input((image_size, image_size, channels), name="image")
    x, width = image, filters
    for i in range(n_down):
        x = keras.layers.Conv2D(width, 4, strides=2, padding="same", name=f"conv{i}")(x)
        layer = make_norm(norm, name=f"conv{i}_norm") if i > 0 else None
        x = layer(x) if layer is not None else x
        x = keras.layers.LeakyReLU(0.2, name=f"conv{i}_lrelu")(x)
        width *= 2
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
