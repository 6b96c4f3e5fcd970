"""Functional network builders, named by role (generator, discriminator, encoder ...)."""

from trainer.networks.cogan_nets import coupled_discriminators, coupled_generators
from trainer.networks.discriminators import patch_discriminator
from trainer.networks.dtn_nets import (
    dtn_discriminator,
    feature_classifier,
    feature_generator,
    feature_projection,
)
from trainer.networks.generators import check_image_size, resnet_generator
from trainer.networks.latent_explore_nets import (
    latent_generator,
    pair_discriminator,
    vae_decoder,
    vae_encoder,
)
from trainer.networks.latent_nets import image_decoder, image_encoder, latent_discriminator
from trainer.networks.unit_nets import latent_shape, unit_decoders, unit_encoders

__all__ = [
    "check_image_size",
    "coupled_discriminators",
    "coupled_generators",
    "dtn_discriminator",
    "feature_classifier",
    "feature_generator",
    "feature_projection",
    "image_decoder",
    "image_encoder",
    "latent_discriminator",
    "latent_generator",
    "latent_shape",
    "pair_discriminator",
    "patch_discriminator",
    "resnet_generator",
    "unit_decoders",
    "unit_encoders",
    "vae_decoder",
    "vae_encoder",
]
