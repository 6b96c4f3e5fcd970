"""StarGAN networks (Choi et al. 2018): one generator G(x, c) and a two-headed discriminator.

The condition c (a one-hot target domain, [B, D]) is tiled over the image and concatenated to
its channels, so every convolution of G sees the target. With several label groups (the mask
vector of training on several datasets) G appends the mask itself: one entry per group, 1 for
the group whose labels c sets. A caller therefore feeds only [c_1 | c_2 | ...] with one label
set, and the mask cannot disagree with the labels.
"""

import math

import keras
from keras import ops

from trainer.layers import InstanceNormalization, ResidualBlock
from trainer.networks.generators import check_image_size


@keras.saving.register_keras_serializable(package="img2img")
class TileCondition(keras.layers.Layer):
    """[x [B, H, W, C], c [B, D]] -> [B, H, W, C + D]: c repeated at every pixel, after x."""

    def call(self, inputs):
        x, c = inputs
        c = ops.cast(c, x.dtype)
        # ones [B, H, W, 1] * c [B, 1, 1, D]: a broadcast every converter keeps dynamic in B.
        tiled = ops.ones_like(x[..., :1]) * c[:, None, None, :]
        return ops.concatenate([x, tiled], axis=-1)

    def compute_output_shape(self, input_shapes):
        x, c = input_shapes
        return (*x[:-1], x[-1] + c[-1])


@keras.saving.register_keras_serializable(package="img2img")
class GroupMask(keras.layers.Layer):
    """c = [c_1 | ... | c_k] [B, sum(sizes)] -> [c_1 | ... | c_k | m] with m_g = max(c_g).

    StarGAN's mask vector m is the one-hot of the dataset whose labels c carries; with exactly
    one label set, max over each group's slice is that one-hot.
    """

    def __init__(self, group_sizes, **kwargs):
        super().__init__(**kwargs)
        self.group_sizes = tuple(int(s) for s in group_sizes)
        if not self.group_sizes or min(self.group_sizes) < 1:
            raise ValueError(f"GroupMask needs positive group sizes, got {self.group_sizes}.")

    def build(self, input_shape):
        if input_shape[-1] != sum(self.group_sizes):
            raise ValueError(
                f"GroupMask{self.group_sizes} expects {sum(self.group_sizes)} labels, got "
                f"{input_shape[-1]}."
            )
        super().build(input_shape)

    def call(self, c):
        parts, start = [c], 0
        for size in self.group_sizes:
            parts.append(ops.max(c[:, start : start + size], axis=-1, keepdims=True))
            start += size
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + len(self.group_sizes))

    def get_config(self):
        return {**super().get_config(), "group_sizes": list(self.group_sizes)}


@keras.saving.register_keras_serializable(package="img2img")
class ResidualOutput(keras.layers.Layer):
    """[x [B, H, W, C] in [-1, 1], h [B, H, W, C]] -> clip(x + 2 tanh(h), -1, 1).

    The generator predicts a change to its input instead of a new image: at h = 0 the output
    is the input, so what the change does not touch (the digit's strokes) is kept by
    construction, and 2 tanh(h) in (-2, 2) still reaches any value in [-1, 1] (an inversion
    is a change of -2x). The clip passes gradients straight through, so a pixel pushed past
    the range can still be pulled back; the forward value (and the exported graph) is the
    plain clip.
    """

    def call(self, inputs):
        x, h = inputs
        x = ops.cast(x, h.dtype)
        value = x + 2.0 * ops.tanh(h)
        return value + ops.stop_gradient(ops.clip(value, -1.0, 1.0) - value)

    def compute_output_shape(self, input_shapes):
        return input_shapes[1]


@keras.saving.register_keras_serializable(package="img2img")
class ConditionalAffine(keras.layers.Layer):
    """[x [B, H, W, C], c [B, D]] -> x * (1 + c W_scale) + c W_shift: a scale and shift per
    channel chosen by the condition (conditional instance normalization after an instance
    norm, Dumoulin et al. 2017; StarGAN v2's AdaIN with a one-hot instead of a style code).

    Both matrices start at zero, so the layer starts as the identity. It is how G keeps the
    target in view: the tiled one-hot enters the first convolution as a constant per channel,
    which the instance norm after it subtracts again everywhere but the zero-padded border.
    """

    def build(self, input_shapes):
        x_shape, c_shape = input_shapes
        channels, conditions = int(x_shape[-1]), int(c_shape[-1])
        self.scale = self.add_weight(
            name="scale", shape=(conditions, channels), initializer="zeros"
        )
        self.shift = self.add_weight(
            name="shift", shape=(conditions, channels), initializer="zeros"
        )
        super().build(input_shapes)

    def call(self, inputs):
        x, c = inputs
        c = ops.cast(c, x.dtype)
        scale = ops.matmul(c, ops.cast(self.scale, x.dtype))[:, None, None, :]
        shift = ops.matmul(c, ops.cast(self.shift, x.dtype))[:, None, None, :]
        return x * (1.0 + scale) + shift

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


CONDITIONS = ("input", "norm")


def _in_relu(x, name, c=None):
    x = InstanceNormalization(center=True, scale=True, name=f"{name}_norm")(x)
    if c is not None:
        x = ConditionalAffine(name=f"{name}_cond")([x, c])
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def stargan_generator(
    image_size,
    group_sizes,
    channels=3,
    filters=64,
    n_down=2,
    n_blocks=6,
    residual_output=False,
    skips=False,
    condition="input",
    name="gen",
):
    """G: (image [S,S,C] named ``image``, one-hot [D] named ``target_domain``) -> ``translated``.

    The paper's layout: c7s1-64, two 4x4 stride-2 convolutions doubling the width, ``n_blocks``
    residual blocks, two 4x4 stride-2 transposed convolutions, c7s1-C and tanh; instance norm
    with affine parameters and ReLU. ``residual_output``: the last convolution predicts a change
    to the input image instead of the image (``ResidualOutput``; off in the paper).
    ``skips``: U-Net skip connections, each decoder stage concatenated with the encoder's map
    of its resolution (off in the paper), so the strokes' geometry need not pass the
    bottleneck. ``condition``: ``"input"`` (the paper's: c tiled and concatenated to the
    image only) or ``"norm"`` (also a scale and shift per target after every instance norm
    of the stem, the downsampling and the upsampling stages, ``ConditionalAffine``).
    ``group_sizes``: labels per group (one group: D domains,
    no mask vector; several: the mask vector is appended, see GroupMask).
    """
    check_image_size(image_size, n_down, f"StarGAN generator {name}")
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {', '.join(CONDITIONS)}, got {condition!r}.")
    group_sizes = tuple(int(s) for s in group_sizes)
    image = keras.Input((image_size, image_size, channels), name="image")
    target = keras.Input((sum(group_sizes),), name="target_domain")
    c = GroupMask(group_sizes, name="mask_vector")(target) if len(group_sizes) > 1 else target
    x = TileCondition(name="tile_condition")([image, c])
    norm_c = c if condition == "norm" else None
    x = keras.layers.Conv2D(filters, 7, padding="same", use_bias=False, name="stem_conv")(x)
    x = _in_relu(x, "stem", norm_c)
    width = filters
    encoder = []
    for i in range(n_down):
        encoder.append(x)
        width *= 2
        x = keras.layers.Conv2D(
            width, 4, strides=2, padding="same", use_bias=False, name=f"down{i}_conv"
        )(x)
        x = _in_relu(x, f"down{i}", norm_c)
    for i in range(n_blocks):
        x = ResidualBlock(width, norm="instance", name=f"res{i}")(x)
    for i in range(n_down):
        width //= 2
        x = keras.layers.Conv2DTranspose(
            width, 4, strides=2, padding="same", use_bias=False, name=f"up{i}_deconv"
        )(x)
        x = _in_relu(x, f"up{i}", norm_c)
        if skips:
            x = keras.layers.Concatenate(name=f"up{i}_skip")([x, encoder[-1 - i]])
    # A residual generator starts as the identity: its change h starts near 0 (not exactly,
    # so that gradients reach the layers below from the first step).
    init = keras.initializers.RandomNormal(stddev=1e-3) if residual_output else "glorot_uniform"
    x = keras.layers.Conv2D(
        channels, 7, padding="same", use_bias=False, kernel_initializer=init, name="head_conv"
    )(x)
    if residual_output:
        out = ResidualOutput(dtype="float32", name="translated")([image, x])
    else:
        out = keras.layers.Activation("tanh", dtype="float32", name="translated")(x)
    return keras.Model([image, target], out, name=name)


def disc_layers_for(image_size, requested):
    """Stride-2 layers of the discriminator: ``requested``, capped so the last map is >= 2x2."""
    cap = max(int(math.log2(image_size)) - 1, 1)
    return max(1, min(int(requested), cap))


def patch_receptive_field(n_layers):
    """Receptive field (px) of one adversarial logit: n 4x4/2 convolutions, then a 3x3/1 one."""
    return 1 + 3 * (2**n_layers - 1) + 2 * 2**n_layers


def stargan_discriminator(image_size, num_labels, channels=3, filters=64, n_layers=6, name="disc"):
    """D: image -> [adversarial patch logits [S/2^n, S/2^n, 1], class logits [num_labels]].

    The paper's layout: n 4x4 stride-2 convolutions (width doubling from ``filters``, at most
    32x) with LeakyReLU(0.01) and no normalization (the gradient penalty needs per-example
    gradients); D_src a 3x3 convolution to one logit per patch; D_cls a convolution as wide as
    the last map to the domain logits. ``n_layers`` is capped by ``disc_layers_for`` so the
    patch map stays at least 2x2 (6 layers at 128 px as in the paper, 4 at 32 px, whose
    logits then see 78 px, the whole image).
    """
    n = disc_layers_for(image_size, n_layers)
    image = keras.Input((image_size, image_size, channels), name="image")
    x = image
    for i in range(n):
        width = filters * min(2**i, 32)
        x = keras.layers.Conv2D(width, 4, strides=2, padding="same", name=f"conv{i}")(x)
        x = keras.layers.LeakyReLU(0.01, name=f"conv{i}_lrelu")(x)
    src = keras.layers.Conv2D(1, 3, padding="same", use_bias=False, name="src_conv")(x)
    src = keras.layers.Activation("linear", dtype="float32", name="logits")(src)
    k = math.ceil(image_size / 2**n)  # "same" padding rounds each halving up
    cls = keras.layers.Conv2D(num_labels, k, padding="valid", use_bias=False, name="cls_conv")(x)
    cls = keras.layers.Reshape((num_labels,), name="cls_flatten")(cls)
    cls = keras.layers.Activation("linear", dtype="float32", name="class_logits")(cls)
    return keras.Model(image, [src, cls], name=name)
