"""The residual block of the ResNet generators (and UNIT's encoders/decoders)."""

import keras

from trainer.layers.normalization import make_norm
from trainer.layers.padding import ReflectionPad2D


@keras.saving.register_keras_serializable(package="img2img")
class ResidualBlock(keras.layers.Layer):
    """x + F(x), F = [pad, conv3x3, norm, relu, (dropout), pad, conv3x3, norm].

    The convolutions keep their bias even before instance norm so that parameter counts match
    the PyTorch references (where ``use_bias`` is True with InstanceNorm2d).
    """

    def __init__(self, filters, norm="instance", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.norm = norm
        self.dropout = float(dropout)
        self.pad1 = ReflectionPad2D(1)
        self.conv1 = keras.layers.Conv2D(self.filters, 3, padding="valid", name="conv1")
        self.norm1 = make_norm(norm, name="norm1")
        self.drop = keras.layers.Dropout(self.dropout) if self.dropout > 0 else None
        self.pad2 = ReflectionPad2D(1)
        self.conv2 = keras.layers.Conv2D(self.filters, 3, padding="valid", name="conv2")
        self.norm2 = make_norm(norm, name="norm2")

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise ValueError(
                f"ResidualBlock({self.filters}) got {input_shape[-1]} input channels; "
                "the skip connection needs them equal."
            )
        shape = input_shape
        for layer in (self.pad1, self.conv1, self.norm1, self.pad2, self.conv2, self.norm2):
            if layer is None:
                continue
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        super().build(input_shape)

    def call(self, inputs, training=None):
        x = self.conv1(self.pad1(inputs))
        if self.norm1 is not None:
            x = self.norm1(x, training=training)
        x = keras.activations.relu(x)
        if self.drop is not None:
            x = self.drop(x, training=training)
        x = self.conv2(self.pad2(x))
        if self.norm2 is not None:
            x = self.norm2(x, training=training)
        return inputs + x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "norm": self.norm,
            "dropout": self.dropout,
        }
