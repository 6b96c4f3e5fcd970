"""Image-to-image generators."""

import keras

from trainer.layers import ReflectionPad2D, ResidualBlock, make_norm


def check_image_size(image_size, downsamplings, what):
    """Raises a clear error when ``image_size`` cannot pass ``downsamplings`` stride-2 steps."""
    factor = 2**downsamplings
    if image_size < 4 * factor or image_size % factor:
        sizes = ", ".join(str(4 * factor * k) for k in (1, 2, 4, 8))
        raise ValueError(
            f"--image_size={image_size} does not fit the {what}: it halves the image "
            f"{downsamplings} times, so the size must be a multiple of {factor} and at least "
            f"{4 * factor} (e.g. {sizes})."
        )


def norm_act(x, norm, name, activation="relu"):
    """Normalization (if any) then ``activation`` ("relu", "lrelu" = LeakyReLU(0.2), ...)."""
    layer = make_norm(norm, name=f"{name}_norm")
    if layer is not None:
        x = layer(x)
    if activation == "lrelu":
        return keras.layers.LeakyReLU(0.2, name=f"{name}_lrelu")(x)
    return keras.layers.Activation(activation, name=f"{name}_{activation}")(x)


def conv_stem(x, filters, n_down, norm, activation="relu"):
    """c7s1-``filters`` (reflection padded), then ``n_down`` stride-2 3x3 convs doubling the
    width; returns (features, width). The front of ResNet generators and UNIT encoders."""
    x = ReflectionPad2D(3, name="stem_pad")(x)
    x = keras.layers.Conv2D(filters, 7, name="stem_conv")(x)
    x = norm_act(x, norm, "stem", activation)
    width = filters
    for i in range(n_down):
        width *= 2
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", name=f"down{i}_conv")(x)
        x = norm_act(x, norm, f"down{i}", activation)
    return x, width


def resnet_generator(
    image_size,
    channels=3,
    out_channels=None,
    filters=64,
    n_blocks=9,
    n_down=2,
    norm="instance",
    dropout=0.0,
    name="generator",
):
    """The CycleGAN ResNet generator (Johnson et al. 2016 layout, as in the PyTorch reference).

    c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3, tanh. At 256 px with 9 blocks and
    64 filters it has 11,378,179 parameters, the same as the reference.
    """
    check_image_size(image_size, n_down, f"generator of {name}")
    out_channels = channels if out_channels is None else out_channels
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x, width = conv_stem(inputs, filters, n_down, norm)
    for i in range(n_blocks):
        x = ResidualBlock(width, norm=norm, dropout=dropout, name=f"res{i}")(x)
    for i in range(n_down):
        width //= 2
        x = keras.layers.Conv2DTranspose(width, 3, strides=2, padding="same", name=f"up{i}_deconv")(
            x
        )
        x = norm_act(x, norm, f"up{i}")
    x = ReflectionPad2D(3, name="head_pad")(x)
    x = keras.layers.Conv2D(out_channels, 7, name="head_conv")(x)
    # tanh in float32 so mixed-precision outputs stay in [-1, 1] exactly.
    outputs = keras.layers.Activation("tanh", dtype="float32", name="translated")(x)
    return keras.Model(inputs, outputs, name=name)
