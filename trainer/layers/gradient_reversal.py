"""The gradient reversal layer of domain-adversarial training (Ganin & Lempitsky 2015)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="img2img")
class GradientReversal(keras.layers.Layer):
    """Identity forward; backward, the upstream gradient times ``-scale``.

    Placed between a feature extractor and a domain classifier, one optimizer step then
    trains the classifier to tell the domains apart and the extractor, through the reversed
    gradient, to make them indistinguishable (XGAN's ``--domain_adversarial=grl``).
    It has no weights; an exported graph keeps only the identity.
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        if self.scale < 0:
            raise ValueError(
                f"GradientReversal scale must be >= 0 (the sign is the layer's), got {scale}."
            )

    def call(self, inputs):
        scale = self.scale

        @tf.custom_gradient
        def reverse(x):
            def grad(upstream):
                return -scale * upstream

            return tf.identity(x), grad

        return reverse(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
