"""Pure loss functions. Each returns one value per example (shape [batch]).

Methods reduce them with ``TranslationModel.mean``, which divides by the *global* batch so
that summing gradients across replicas gives the gradient of the global mean.
"""

from trainer.losses.adaptation import masked_accuracy, masked_softmax_cross_entropy
from trainer.losses.adversarial import (
    GAN_LOSSES,
    GanLoss,
    gan_loss,
    gradient_penalty,
    hinge_discriminator,
    hinge_generator,
    lsgan_discriminator,
    lsgan_generator,
    vanilla_discriminator,
    vanilla_generator,
    wgan_critic,
    wgan_generator,
)
from trainer.losses.classification import group_softmax_cross_entropy, softmax_cross_entropy
from trainer.losses.divergence import gaussian_kl, unit_variance_kl
from trainer.losses.dtn import (
    f_constancy,
    realness,
    target_identity,
    three_way_discriminator,
    three_way_generator,
    total_variation,
)
from trainer.losses.latent import (
    gaussian_sample,
    negative_elbo,
    noise_regulariser,
    pair_discriminator_loss,
)
from trainer.losses.reconstruction import l1, l2
from trainer.losses.vae import fixed_variance_sample, vae_loss

__all__ = [
    "GAN_LOSSES",
    "GanLoss",
    "f_constancy",
    "fixed_variance_sample",
    "gan_loss",
    "gaussian_kl",
    "gaussian_sample",
    "gradient_penalty",
    "group_softmax_cross_entropy",
    "hinge_discriminator",
    "hinge_generator",
    "l1",
    "l2",
    "lsgan_discriminator",
    "lsgan_generator",
    "masked_accuracy",
    "masked_softmax_cross_entropy",
    "negative_elbo",
    "noise_regulariser",
    "pair_discriminator_loss",
    "realness",
    "softmax_cross_entropy",
    "target_identity",
    "three_way_discriminator",
    "three_way_generator",
    "total_variation",
    "unit_variance_kl",
    "vae_loss",
    "vanilla_discriminator",
    "vanilla_generator",
    "wgan_critic",
    "wgan_generator",
]
