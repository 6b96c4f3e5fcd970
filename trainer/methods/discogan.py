"""DiscoGAN (Kim et al. 2017, arXiv 1703.05192): two generators, two discriminators and a
reconstruction loss both ways, so each domain's images must survive a round trip.

The paper's choices, kept as defaults:
- G_AB, G_BA: encoder-decoders without skip connections (``networks.discogan_nets``: 4x4
  stride-2 convolutions with LeakyReLU down to a 4x4 map, the paper's four at 64 px, and
  transposed convolutions with ReLU back up, batch norm); D_A, D_B: the encoder followed by one
  logit per image (``networks.dcgan.dcgan_discriminator``).
- Objective, every term with weight 1 as in the paper (L_G = L_GAN_B + L_CONST_A + L_GAN_A +
  L_CONST_B, L_D = L_D_A + L_D_B):
      L_G = GAN(D_B(G_AB(x_A))) + GAN(D_A(G_BA(x_B)))
            + lambda_recon * [d(G_BA(G_AB(x_A)), x_A) + d(G_AB(G_BA(x_B)), x_B)]
  with the vanilla (cross-entropy, non-saturating) GAN and d the mean squared error
  (``--recon_loss=l2``; ``l1`` is the other distance offered). ``--gan_loss`` takes the shared
  vocabulary.
- Adam 2e-4, (0.5, 0.999): the paper gives no optimizer settings; these are those of the
  DCGAN its networks come from, and of the authors' reference implementation.

Where the paper is silent or this departs from it: ``--lambda_recon`` (1, i.e. the paper's
plain sum) scales both reconstruction terms; the reference implementation's feature-matching
loss and its reconstruction-weight schedule are not in the paper and are left out; the
generator depth adapts to the image size (``--gen_down``, -1 = down to 4x4).

Paths ``a2b`` (G_AB) and ``b2a`` (G_BA): ``image`` -> ``translated``, both in [-1, 1].
"""

import tensorflow as tf

from trainer import losses
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.hparams import GAN_LOSSES, NORMS
from trainer.methods.two_way import cycle_samples
from trainer.networks.dcgan import dcgan_discriminator
from trainer.networks.discogan_nets import encoder_decoder_generator

# --recon_loss: the distance d of the reconstruction terms.
RECON_LOSSES = {"l2": losses.l2, "l1": losses.l1}


class DiscoGAN(TranslationModel):
    DATA = "unpaired"
    CAPABILITIES = frozenset()
    HPARAMS = {
        "gan_loss": HParam(
            "vanilla",
            "Adversarial loss: vanilla (DiscoGAN's), lsgan, hinge or wgan (needs "
            "--gradient_penalty or --clip_weights).",
            choices=GAN_LOSSES,
        ),
        "recon_loss": HParam(
            "l2",
            "Distance of the reconstruction terms: l2 (mean squared error, the paper's) or l1.",
            choices=tuple(RECON_LOSSES),
        ),
        "lambda_recon": HParam(
            1.0, "Weight of each reconstruction term (A -> B -> A and B -> A -> B)."
        ),
        "gen_down": HParam(
            -1, "Stride-2 steps of each generator's encoder; -1 = down to a 4x4 map.", shape=True
        ),
        "norm": HParam(
            "batch",
            "Normalization in G and D: batch (the paper's), instance, layer or none.",
            shape=True,
            choices=NORMS,
        ),
    }
    # Tiny settings for the tests' smoke runs (the contract test, the flagfile test).
    SMOKE_HPARAMS = {"filters": 4}

    def build_networks(self):
        hp, size = self.hp, self.image_size
        gen = dict(filters=hp.filters, n_down=hp.gen_down, norm=hp.norm)
        self.gen_ab = encoder_decoder_generator(size, **gen, name="gen_ab")
        self.gen_ba = encoder_decoder_generator(size, **gen, name="gen_ba")
        self.disc_a = dcgan_discriminator(size, filters=hp.filters, norm=hp.norm, name="disc_a")
        self.disc_b = dcgan_discriminator(size, filters=hp.filters, norm=hp.norm, name="disc_b")

    def players(self):
        return {"gen": [self.gen_ab, self.gen_ba], "disc": [self.disc_a, self.disc_b]}

    def generator_terms(self, x_a, x_b):
        """G's named, weighted terms; also returns the translations (x_ab, x_ba)."""
        hp = self.hp
        recon = RECON_LOSSES[hp.recon_loss]
        x_ab = self.gen_ab(x_a, training=True)
        x_ba = self.gen_ba(x_b, training=True)
        terms = {
            "adv_ab": (1.0, self.gan.generator(self.disc_b(x_ab, training=True))),
            "adv_ba": (1.0, self.gan.generator(self.disc_a(x_ba, training=True))),
            "recon_a": (hp.lambda_recon, recon(self.gen_ba(x_ab, training=True), x_a)),
            "recon_b": (hp.lambda_recon, recon(self.gen_ab(x_ba, training=True), x_b)),
        }
        return terms, x_ab, x_ba

    def train_step(self, batch):
        x_a, x_b = batch["x_a"], batch["x_b"]
        with tf.GradientTape() as tape:
            terms, x_ab, x_ba = self.generator_terms(x_a, x_b)
            gen_loss, logs = self.weighted_loss("gen_loss", terms)
        self.step("gen", tape, gen_loss)

        fake_a, fake_b = tf.stop_gradient(x_ba), tf.stop_gradient(x_ab)
        with tf.GradientTape() as tape:
            terms = {
                **self.adversarial_terms("a", self.disc_a, x_a, fake_a),
                **self.adversarial_terms("b", self.disc_b, x_b, fake_b),
            }
            disc_loss, disc_logs = self.weighted_loss("disc_loss", terms)
        self.step("disc", tape, disc_loss)
        return {**logs, **disc_logs}

    def translation_paths(self):
        return self.two_way_paths(self.gen_ab, self.gen_ba, "G_AB", "G_BA")

    def sample_images(self, batch):
        return cycle_samples(
            batch,
            lambda x: self.gen_ab(x, training=False),
            lambda x: self.gen_ba(x, training=False),
        )
