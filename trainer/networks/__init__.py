"""Functional network builders, named by role (generator, discriminator, encoder ...)."""

from trainer.networks.discriminators import patch_discriminator
from trainer.networks.generators import check_image_size, resnet_generator

__all__ = ["check_image_size", "patch_discriminator", "resnet_generator"]
