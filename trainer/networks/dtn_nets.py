"""The Domain Transfer Network's networks (arXiv 1611.02200): f, g and the three-way D.

f: a digit classifier, stride-2 3x3 convolutions doubling the width from ``filters`` down to
a 4x4 map, a dense layer to the ``features`` vector (what f-constancy compares, taken before
its ReLU) and a dense ``class_logits`` head. g: from that vector to an image, in the DCGAN
generator's layout. D: DCGAN-style stride-2 convolutions down to 4x4 and three logits (fake
from source, fake from target, real target).
"""

import keras

from trainer.networks.dcgan import (
    down_trunk,
    image_head,
    num_doublings,
    projection_block,
    up_block,
)


def feature_classifier(image_size, filters=64, feature_dim=128, num_classes=10, name="f"):
    """f: ``image`` -> {"features": [feature_dim], "class_logits": [num_classes]} (float32)."""
    n_down = num_doublings(image_size)
    image = keras.Input((image_size, image_size, 3), name="image")
    x, width = image, filters
    for i in range(n_down):
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", name=f"conv{i}")(x)
        x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
        width *= 2
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(feature_dim, name="dense_features")(x)
    features = keras.layers.Activation("linear", dtype="float32", name="features")(x)
    x = keras.layers.ReLU(name="features_relu")(features)
    x = keras.layers.Dense(num_classes, name="dense_logits")(x)
    logits = keras.layers.Activation("linear", dtype="float32", name="class_logits")(x)
    return keras.Model(image, {"features": features, "class_logits": logits}, name=name)


def feature_projection(shape, feature_dim, name="proj"):
    """A linear map from a ``code`` of ``shape`` (e.g. a spatial embedding) to a ``features``
    vector of f's width: where another network's code is compared with f's features."""
    code = keras.Input(shape, name="code")
    x = keras.layers.Flatten(name="flatten")(code) if len(shape) > 1 else code
    x = keras.layers.Dense(feature_dim, name="dense_features")(x)
    features = keras.layers.Activation("linear", dtype="float32", name="features")(x)
    return keras.Model(code, features, name=name)


def feature_generator(image_size, feature_dim=128, filters=64, norm="batch", name="gen"):
    """g: f's feature vector, input ``code`` [feature_dim] -> ``generated`` image in [-1, 1].

    The DCGAN generator's layout (dense projection to 4x4, stride-2 4x4 transposed
    convolutions halving the width, norm and ReLU, tanh), with its own input and output names:
    in the a2b path g follows f, whose input is ``image`` and output ``features``.
    """
    n_up = num_doublings(image_size)
    z = keras.Input((feature_dim,), name="code")
    width = filters * 2 ** (n_up - 1)
    x = projection_block(z, width, norm, prefix="up0")
    for i in range(1, n_up):
        width //= 2
        x = up_block(x, width, norm, i)
    out = image_head(x, 3, name="generated")
    return keras.Model(z, out, name=name)


def dtn_discriminator(image_size, filters=64, norm="batch", name="disc"):
    """D: ``image`` -> three logits [3] (fake from source, fake from target, real target)."""
    n_down = num_doublings(image_size)
    image = keras.Input((image_size, image_size, 3), name="image")
    x = down_trunk(image, filters, norm, n_down)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(3, name="dense_logits")(x)
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model(image, logits, name=name)
