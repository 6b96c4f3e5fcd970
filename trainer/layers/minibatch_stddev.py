"""The minibatch standard-deviation feature of ProGAN (Karras et al. 2018, section 3)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="img2img")
class MinibatchStdDev(keras.layers.Layer):
    """Appends one channel: how much the images of a group differ from one another.

    The batch is split into groups of ``group_size`` images (the whole batch when it is
    smaller or does not divide); within a group, the standard deviation of every feature over
    the group's images is averaged into one number, which is appended to each of the group's
    feature maps as a constant channel. A discriminator that sees it can tell a batch of near
    copies from a batch of real images, so a generator that draws few modes is penalised.
    The statistic is per replica under a distribution strategy (each replica's batch).
    """

    def __init__(self, group_size=4, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.group_size = int(group_size)
        self.epsilon = float(epsilon)
        if self.group_size < 1:
            raise ValueError(f"MinibatchStdDev group_size must be >= 1, got {group_size}.")

    def call(self, inputs):
        if inputs.shape.rank != 4:
            raise ValueError(f"MinibatchStdDev expects NHWC feature maps, got {inputs.shape}.")
        x = tf.cast(inputs, tf.float32)
        shape = tf.shape(x)
        n = shape[0]
        group = tf.minimum(self.group_size, n)
        group = tf.where(n % group == 0, group, n)
        # [group, n / group, H, W, C]: image i of every group at index i.
        grouped = tf.reshape(x, tf.concat([[group, -1], shape[1:]], axis=0))
        std = tf.sqrt(tf.math.reduce_variance(grouped, axis=0) + self.epsilon)
        stat = tf.reduce_mean(std, axis=[1, 2, 3], keepdims=True)  # [n / group, 1, 1, 1]
        stat = tf.tile(stat, [group, shape[1], shape[2], 1])
        return tf.concat([inputs, tf.cast(stat, inputs.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = None if input_shape[-1] is None else input_shape[-1] + 1
        return (*input_shape[:-1], channels)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size, "epsilon": self.epsilon}
