"""Coupled networks (CoGAN, Liu & Tuzel 2016): pairs of generators or discriminators that share
layers. Sharing means one layer object called in both functional models, so checkpoints and
exports hold it once and a step through either domain updates it for both.

UNIT uses ``coupled_discriminators`` too: independent (``shared_layers=0``) or, for domain
adaptation, sharing their high-level layers and a classifier head.
"""

import keras

from trainer.layers import MinibatchStdDev, make_norm
from trainer.networks.dcgan import image_head, num_doublings, projection_block, up_block


def coupled_generators(
    image_size,
    latent_dim=100,
    channels=3,
    filters=64,
    specific_layers=1,
    norm="batch",
    names=("gen_a", "gen_b"),
):
    """g1, g2: z [latent_dim] -> image [S,S,C] in [-1, 1]; shared first (high-level) layers.

    DCGAN layout (as ``networks.dcgan``): dense to 4x4 x (filters * 2^(k-1)), then
    k = log2(S/4) transposed convolutions (kernel 4, stride 2) doubling the size, each but the
    last halving the width with norm and ReLU, the last one to C channels with tanh. The dense
    layer and the first ``k - specific_layers`` upsamplings are shared; the last
    ``specific_layers`` (the output layer among them) belong to one domain: at 1, all but the
    last layer are shared, as in the paper. Returns ``(gen_a, gen_b, shared_gen)``.
    """
    n_up = num_doublings(image_size)
    if not 1 <= specific_layers <= n_up:
        raise ValueError(
            f"specific_layers={specific_layers} must be between 1 and {n_up} at "
            f"image_size {image_size}."
        )
    widths = [filters * 2 ** (n_up - 1 - i) for i in range(n_up)]  # 4x4 ... S/2 maps

    def up(x, i):
        return image_head(x, channels) if i == n_up - 1 else up_block(x, widths[i + 1], norm, i)

    z = keras.Input((latent_dim,), name="z")
    x = projection_block(z, widths[0], norm)
    for i in range(n_up - specific_layers):
        x = up(x, i)
    shared = keras.Model(z, x, name="shared_gen")

    generators = []
    for name in names:
        z = keras.Input((latent_dim,), name="z")
        x = shared(z)
        for i in range(n_up - specific_layers, n_up):
            x = up(x, i)
        generators.append(keras.Model(z, x, name=name))
    return generators[0], generators[1], shared


def coupled_discriminators(
    image_size,
    channels=3,
    filters=64,
    n_layers=3,
    shared_layers=0,
    num_classes=0,
    norm="none",
    patch=True,
    minibatch_stddev=0,
    domain_norm=False,
    names=("disc_a", "disc_b"),
):
    """D1, D2: image -> {"logits", "features"(, "class_logits")}, optionally sharing layers.

    ``n_layers`` convolutions (kernel 4, stride 2, LeakyReLU 0.2; width doubling from
    ``filters`` up to 8x) give the top feature map ``features``. The last ``shared_layers`` of
    them and the heads are shared by D1 and D2 when ``shared_layers > 0``. Heads: ``logits``,
    a 3x3 convolution to one logit per patch (``patch=True``, as UNIT) or a dense layer to one
    logit per image (CoGAN); ``class_logits`` (when ``num_classes > 0``), a dense softmax
    classifier over the flattened features, for domain adaptation. Outputs are float32.
    ``minibatch_stddev > 0`` appends ProGAN's minibatch standard deviation (over groups of that
    many images) to the features the ``logits`` head reads, so D sees how alike a batch is.
    ``domain_norm=True`` gives each discriminator its own normalization layers in the shared
    layers (their convolutions stay shared): domain-specific batch norm (Chang et al. 2019), so
    batch statistics, moving averages and scale/offset are per domain.
    """
    if 2**n_layers > image_size // 2:
        raise ValueError(
            f"--image_size={image_size} is too small for a discriminator with {n_layers} "
            f"stride-2 layers (needs >= {2 ** (n_layers + 1)}): lower --disc_layers."
        )
    if not 0 <= shared_layers <= n_layers:
        raise ValueError(f"shared_layers={shared_layers} must be between 0 and {n_layers}.")

    def block_norm(i):
        # No normalization on the first layer, as in DCGAN/PatchGAN.
        return make_norm(norm, name=f"conv{i}_norm") if i > 0 else None

    def conv_block(i, with_norm=True):
        width = filters * min(2**i, 8)
        return [
            keras.layers.Conv2D(width, 4, strides=2, padding="same", name=f"conv{i}"),
            block_norm(i) if with_norm else None,
            keras.layers.LeakyReLU(0.2, name=f"conv{i}_lrelu"),
        ]

    def heads():
        out = {}
        stddev = [MinibatchStdDev(minibatch_stddev, name="mbstd")] if minibatch_stddev else []
        if patch:
            out["logits"] = [
                *stddev,
                keras.layers.Conv2D(1, 3, padding="same", name="logits_conv"),
            ]
        else:
            out["logits"] = [
                *stddev,
                keras.layers.Flatten(name="logits_flatten"),
                keras.layers.Dense(1, name="logits_dense"),
            ]
        if num_classes:
            out["class_logits"] = [
                keras.layers.Flatten(name="class_flatten"),
                keras.layers.Dense(num_classes, name="class_dense"),
            ]
        return out

    first_shared = n_layers - shared_layers
    # With domain_norm each discriminator builds its own norm layers below.
    shared_convs = [conv_block(i, with_norm=not domain_norm) for i in range(first_shared, n_layers)]
    shared_heads = heads() if shared_layers else None

    def apply(layers, x):
        for layer in layers:
            if layer is not None:
                x = layer(x)
        return x

    discriminators = []
    for name in names:
        inputs = keras.Input((image_size, image_size, channels), name="image")
        x = inputs
        for i in range(first_shared):
            x = apply(conv_block(i), x)
        for i, (conv, shared_norm, act) in enumerate(shared_convs, first_shared):
            x = apply([conv, block_norm(i) if domain_norm else shared_norm, act], x)
        outputs = {
            "features": keras.layers.Activation("linear", dtype="float32", name="features")(x)
        }
        for key, layers in (shared_heads or heads()).items():
            y = apply(layers, x)
            outputs[key] = keras.layers.Activation("linear", dtype="float32", name=key)(y)
        discriminators.append(keras.Model(inputs, outputs, name=name))
    return discriminators[0], discriminators[1]
