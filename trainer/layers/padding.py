"""Reflection padding, the border treatment of the CycleGAN/UNIT reference generators."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="img2img")
class ReflectionPad2D(keras.layers.Layer):
    """Pads the two spatial axes of an NHWC tensor by mirroring, without repeating the edge.

    Zero padding darkens borders of translated images; reflection keeps image statistics at
    the edges, which is why the reference ResNet generators use it. ``tf.pad(mode="REFLECT")``
    lowers to TFLite's MIRROR_PAD and ONNX's Pad(mode=reflect).
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding, int):
            padding = ((padding, padding), (padding, padding))
        elif len(padding) == 2 and all(isinstance(p, int) for p in padding):
            padding = ((padding[0], padding[0]), (padding[1], padding[1]))
        self.padding = tuple(tuple(int(v) for v in p) for p in padding)
        if any(v < 0 for p in self.padding for v in p):
            raise ValueError(f"ReflectionPad2D padding must be >= 0, got {padding}.")

    def build(self, input_shape):
        (top, bottom), (left, right) = self.padding
        height, width = input_shape[1], input_shape[2]
        # Reflection cannot reach past the opposite edge: pad < size is required.
        for size, pads, axis in (
            (height, (top, bottom), "height"),
            (width, (left, right), "width"),
        ):
            if size is not None and max(pads) >= size:
                raise ValueError(
                    f"ReflectionPad2D({self.padding}) needs an input {axis} larger than the "
                    f"padding, got {axis} {size}: use larger images or fewer downsampling steps."
                )
        super().build(input_shape)

    def call(self, inputs):
        (top, bottom), (left, right) = self.padding
        return tf.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        height, width = input_shape[1], input_shape[2]
        return (
            input_shape[0],
            None if height is None else height + top + bottom,
            None if width is None else width + left + right,
            input_shape[3],
        )

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}
