"""Custom Keras layers shared by every network: all serializable and exportable."""

from trainer.layers.gradient_reversal import GradientReversal
from trainer.layers.minibatch_stddev import MinibatchStdDev
from trainer.layers.normalization import InstanceNormalization, make_norm
from trainer.layers.padding import ReflectionPad2D
from trainer.layers.residual import ResidualBlock

__all__ = [
    "GradientReversal",
    "InstanceNormalization",
    "MinibatchStdDev",
    "ReflectionPad2D",
    "ResidualBlock",
    "make_norm",
]
