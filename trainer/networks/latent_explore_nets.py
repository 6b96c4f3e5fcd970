"""Networks of latent-space exploration (arXiv 1805.10130): a VAE per domain with a learned
posterior, a latent generator G(z, eps) -> z' and a discriminator of (z, z') pairs.

The VAEs code an image as a flat vector of ``latent_dim`` entries; the latent networks are
small MLPs on those vectors, so the latent GAN trains at a fraction of an image GAN's cost.
"""

import keras

from trainer.networks.generators import check_image_size


def _lrelu(x, name):
    return keras.layers.LeakyReLU(0.2, name=name)(x)


def vae_encoder(image_size, latent_dim=16, channels=3, filters=32, n_down=2, name="enc"):
    """f: ``image`` [S,S,C] -> [``mu``, ``log_var``], each [latent_dim] (float32).

    ``n_down`` 4x4 stride-2 convolutions doubling the width from ``filters`` (LeakyReLU 0.2),
    then two dense heads: the posterior mean and log-variance.
    """
    check_image_size(image_size, n_down, "latent_explore encoder")
    image = keras.Input((image_size, image_size, channels), name="image")
    x = image
    for i in range(n_down):
        x = keras.layers.Conv2D(filters * 2**i, 4, strides=2, padding="same", name=f"down{i}")(x)
        x = _lrelu(x, f"down{i}_act")
    x = keras.layers.Flatten(name="flatten")(x)
    mu = keras.layers.Dense(latent_dim, dtype="float32", name="mu")(x)
    log_var = keras.layers.Dense(latent_dim, dtype="float32", name="log_var")(x)
    return keras.Model(image, [mu, log_var], name=name)


def vae_decoder(image_size, latent_dim=16, channels=3, filters=32, n_down=2, name="dec"):
    """g: ``z`` [latent_dim] -> image [S,S,C] in [-1, 1] (tanh, float32): the encoder mirrored
    (a dense projection to its last map, ``n_down`` 4x4 stride-2 transposed convolutions)."""
    check_image_size(image_size, n_down, "latent_explore decoder")
    side, width = image_size // 2**n_down, filters * 2 ** (n_down - 1)
    z = keras.Input((latent_dim,), name="z")
    x = keras.layers.Dense(side * side * width, name="project")(z)
    x = _lrelu(keras.layers.Reshape((side, side, width), name="reshape")(x), "project_act")
    for i in range(n_down):
        width = max(width // 2, 4)
        x = keras.layers.Conv2DTranspose(width, 4, strides=2, padding="same", name=f"up{i}")(x)
        x = _lrelu(x, f"up{i}_act")
    x = keras.layers.Conv2D(channels, 3, padding="same", name="head")(x)
    out = keras.layers.Activation("tanh", dtype="float32", name="translated")(x)
    return keras.Model(z, out, name=name)


def _mlp(x, units, layers, prefix):
    for i in range(layers):
        x = _lrelu(keras.layers.Dense(units, name=f"{prefix}{i}")(x), f"{prefix}{i}_act")
    return x


def latent_generator(latent_dim=16, units=128, layers=2, name="gen"):
    """G: (``z`` [latent_dim], ``eps`` [latent_dim] ~ N(0, I)) -> a code of the other domain.

    An MLP on concat(z, eps): ``layers`` dense layers of ``units`` (LeakyReLU 0.2), then a
    linear layer to ``latent_dim``. The noise has the code's size, so G(eps, z) (the
    regulariser's swapped call) is defined.
    """
    z = keras.Input((latent_dim,), name="z")
    eps = keras.Input((latent_dim,), name="eps")
    x = keras.layers.Concatenate(name="concat")([z, eps])
    x = _mlp(x, units, layers, "dense")
    code = keras.layers.Dense(latent_dim, dtype="float32", name="code")(x)
    return keras.Model([z, eps], code, name=name)


def pair_discriminator(latent_dim=16, units=128, layers=2, name="disc"):
    """D: ``pair`` = concat(z, z') [2 * latent_dim] -> one logit: whether z' is a real partner
    of z. One input (not two) so the WGAN-GP penalty interpolates pairs as it does images."""
    pair = keras.Input((2 * latent_dim,), name="pair")
    x = _mlp(pair, units, layers, "dense")
    logit = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(pair, logit, name=name)
