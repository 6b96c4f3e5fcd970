"""Instance normalization and the norm-layer factory used by the networks."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="img2img")
class InstanceNormalization(keras.layers.Layer):
    """Normalizes each sample and channel over the spatial axes (Ulyanov et al., 2016).

        y = (x - mean_hw(x)) / sqrt(var_hw(x) + epsilon) * gamma + beta

    Equal to ``keras.layers.GroupNormalization(groups=-1)``, but written with per-channel
    spatial moments and no reshapes, which TFLite lowers to a short MEAN / SQUARED_DIFFERENCE /
    RSQRT chain and ONNX to ReduceMean ops, and which runs the moments in float32 under
    mixed precision. ``center``/``scale`` default to False, as in the PyTorch references
    (``nn.InstanceNorm2d(affine=False)``).
    """

    def __init__(self, epsilon=1e-5, center=False, scale=False, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"InstanceNormalization expects NHWC inputs (rank 4), got shape {input_shape}."
            )
        channels = input_shape[-1]
        self.gamma = (
            self.add_weight(name="gamma", shape=(channels,), initializer="ones")
            if self.scale
            else None
        )
        self.beta = (
            self.add_weight(name="beta", shape=(channels,), initializer="zeros")
            if self.center
            else None
        )
        super().build(input_shape)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        centered = x - mean
        variance = ops.mean(ops.square(centered), axis=(1, 2), keepdims=True)
        y = centered * ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            y = y * ops.cast(self.gamma, "float32")
        if self.beta is not None:
            y = y + ops.cast(self.beta, "float32")
        return ops.cast(y, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }


NORMS = ("instance", "batch", "layer", "none")


def make_norm(kind, name=None):
    """Returns a fresh normalization layer of ``kind`` (one of NORMS), or None for "none"."""
    if kind == "instance":
        return InstanceNormalization(name=name)
    if kind == "batch":
        return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)
    if kind == "layer":
        return keras.layers.LayerNormalization(axis=(1, 2, 3), epsilon=1e-5, name=name)
    if kind == "none":
        return None
    raise ValueError(f"Unknown normalization {kind!r}: choose one of {', '.join(NORMS)}.")
