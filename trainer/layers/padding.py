"""Reflection padding, the border treatment of the CycleGAN/UNIT reference generators."""

import keras
import tensorflow as tf


def _index(x, axis, start, stop):
    """``x[..., start:stop, ...]`` along ``axis`` of a rank-4 tensor (stop None = the end)."""
    index = [slice(None)] * 4
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _concat(parts, axis):
    """Concatenation in groups of at most three inputs: the XNNPACK delegate leaves a
    CONCATENATION with many inputs (7, for a pad of 3 in one op) to the builtin kernel."""
    while len(parts) > 1:
        parts = [
            parts[i] if len(parts[i : i + 3]) == 1 else tf.concat(parts[i : i + 3], axis=axis)
            for i in range(0, len(parts), 3)
        ]
    return parts[0]


def _reflect(x, axis, before, after):
    """Reflection padding of one axis: rows ``before..1`` in front, ``-2..-(after+1)`` behind.

    Indices from the end are negative, so the same graph serves any (even unknown) size.
    """
    if not before and not after:
        return x
    front = [_index(x, axis, i, i + 1) for i in range(before, 0, -1)]
    back = [_index(x, axis, -1 - i, -i) for i in range(1, after + 1)]
    parts = []
    if front:
        parts.append(_concat(front, axis))
    parts.append(x)
    if back:
        parts.append(_concat(back, axis))
    return tf.concat(parts, axis=axis) if len(parts) > 1 else parts[0]


@keras.saving.register_keras_serializable(package="img2img")
class ReflectionPad2D(keras.layers.Layer):
    """Pads the two spatial axes of an NHWC tensor by mirroring, without repeating the edge.

    Zero padding darkens borders of translated images; reflection keeps image statistics at
    the edges, which is why the reference ResNet generators use it.

    Written as strided slices and concatenations rather than ``tf.pad(mode="REFLECT")``: the
    same values, but TFLite's MIRROR_PAD is not taken by the XNNPACK delegate, which then runs
    the graph in pieces with builtin kernels between them; slices and concatenations of at
    most three inputs keep a whole generator in one XNNPACK partition. ONNX gets Slice and
    Concat, which ONNX Runtime runs as fast as its reflect Pad.
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
        return _reflect(_reflect(inputs, 1, top, bottom), 2, left, right)

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
