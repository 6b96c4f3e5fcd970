"""XGAN (Royer et al., arXiv 1711.05139): a shared embedding between two domains.

Two encoders whose top layers are one shared sub-model map both domains into one embedding;
two decoders whose bottom layers are one shared sub-model map it back (UNIT's builders,
``trainer/networks/unit_nets.py``, with their spatial code as the embedding).
Objective, the paper's terms with their weights by name:

- ``lambda_rec``: reconstruction, L1(d_a(e_a(x_a)), x_a) + L1(d_b(e_b(x_b)), x_b);
- ``lambda_dann``: domain-adversarial loss on the embedding, a domain classifier ``disc_z``
  reading e_a(x_a) and e_b(x_b). ``--domain_adversarial=grl`` (the paper's): the classifier sits
  behind a gradient reversal layer and is trained with the encoders in one step by binary
  cross-entropy (the encoders receive the reversed gradient); ``disc``: the classifier is a
  discriminator of the "disc" player in the ``--gan_loss`` vocabulary, and the encoders fool it
  with flipped labels;
- ``lambda_sem``: semantic consistency, L1(e_b(d_b(e_a(x_a))), e_a(x_a)) and the same from B;
- ``lambda_gan``: GAN loss on the translations d_b(e_a(x_a)) and d_a(e_b(x_b)) against
  PatchGAN discriminators of A and B.

Where we chose: the weights default to 1 (the paper tunes them per dataset); the semantic
consistency distance is L1 (the paper writes a norm without naming it) and its gradient
reaches both encoders and the decoder; the embedding is a spatial map rather than a vector,
so the same path converts to every export format. The paper's optional teacher loss (towards
a pretrained embedding) is not implemented.
"""

import tensorflow as tf

from trainer import losses
from trainer.layers import GradientReversal
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.hparams import NORMS
from trainer.methods.two_way import EncoderDecoderPaths
from trainer.networks import (
    latent_discriminator,
    latent_shape,
    patch_discriminator,
    unit_decoders,
    unit_encoders,
)

DOMAIN_ADVERSARIAL = ("grl", "disc")


class XGAN(EncoderDecoderPaths, TranslationModel):
    DATA = "unpaired"
    CAPABILITIES = frozenset()
    HPARAMS = {
        "lambda_rec": HParam(1.0, "Weight of the L1 reconstruction, per domain."),
        "lambda_dann": HParam(1.0, "Weight of the domain-adversarial loss on the embedding."),
        "lambda_sem": HParam(1.0, "Weight of the semantic consistency L1, per direction."),
        "lambda_gan": HParam(1.0, "Weight of the GAN loss on the translations, per direction."),
        "domain_adversarial": HParam(
            "grl",
            "How the embedding is made domain-free: grl (a domain classifier behind a gradient "
            "reversal layer, trained with the encoders) or disc (a discriminator the encoders "
            "fool, in the --gan_loss vocabulary).",
            choices=DOMAIN_ADVERSARIAL,
        ),
        "n_down": HParam(
            2, "Stride-2 downsamplings of the encoders (upsamplings of decoders).", shape=True
        ),
        "enc_blocks": HParam(2, "Domain-specific residual blocks per encoder.", shape=True),
        "dec_blocks": HParam(2, "Domain-specific residual blocks per decoder.", shape=True),
        "shared_blocks": HParam(
            1,
            "Residual blocks shared by the encoders (top) and the decoders (bottom), each.",
            shape=True,
        ),
        "disc_layers": HParam(3, "Stride-2 layers of the image discriminators.", shape=True),
        "latent_disc_layers": HParam(
            2, "3x3 layers of the embedding's domain classifier.", shape=True
        ),
        "norm": HParam(
            "instance",
            "Normalization in encoders, decoders and image discriminators: instance, batch, "
            "layer or none.",
            shape=True,
            choices=NORMS,
        ),
    }
    SMOKE_HPARAMS = {
        "filters": 4,
        "enc_blocks": 1,
        "dec_blocks": 1,
        "shared_blocks": 1,
        "disc_layers": 2,
        "latent_disc_layers": 1,
    }

    def build_networks(self):
        hp, size = self.hp, self.image_size
        common = dict(filters=hp.filters, n_down=hp.n_down, norm=hp.norm)
        common["shared_blocks"] = hp.shared_blocks
        self.enc_a, self.enc_b, self.shared_enc = unit_encoders(
            size, enc_blocks=hp.enc_blocks, **common
        )
        self.dec_a, self.dec_b, self.shared_dec = unit_decoders(
            size, dec_blocks=hp.dec_blocks, **common
        )
        disc = dict(image_size=size, filters=hp.filters, n_layers=hp.disc_layers, norm=hp.norm)
        self.disc_a = patch_discriminator(**disc, name="disc_a")
        self.disc_b = patch_discriminator(**disc, name="disc_b")
        shape = latent_shape(size, hp.filters, hp.n_down)
        self.disc_z = latent_discriminator(shape, shape[-1], hp.latent_disc_layers, name="disc_z")
        self.reverse = GradientReversal(1.0, name="reverse")

    def players(self):
        gen = [self.enc_a, self.enc_b, self.dec_a, self.dec_b]
        if self.hp.domain_adversarial == "grl":
            # Trained with the encoders in one step: the reversal layer flips what they get.
            return {"gen": [*gen, self.disc_z], "disc": [self.disc_a, self.disc_b]}
        return {"gen": gen, "disc": [self.disc_a, self.disc_b, self.disc_z]}

    def domain_adversarial_term(self, e_a, e_b):
        """The encoders' side of the domain-adversarial loss (per example)."""
        if self.hp.domain_adversarial == "grl":
            # DANN: the classifier learns "A" for e_a and "B" for e_b by cross-entropy.
            return losses.vanilla_discriminator(
                self.disc_z(self.reverse(e_a), training=True),
                self.disc_z(self.reverse(e_b), training=True),
            )
        # Flipped labels: A embeddings should read as B and B embeddings as A.
        return self.gan.discriminator(
            self.disc_z(e_b, training=True), self.disc_z(e_a, training=True)
        )

    def train_step(self, batch):
        x_a, x_b = batch["x_a"], batch["x_b"]
        hp = self.hp
        with tf.GradientTape() as tape:
            e_a = self.enc_a(x_a, training=True)
            e_b = self.enc_b(x_b, training=True)
            x_aa = self.dec_a(e_a, training=True)
            x_bb = self.dec_b(e_b, training=True)
            x_ab = self.dec_b(e_a, training=True)
            x_ba = self.dec_a(e_b, training=True)
            e_ab = self.enc_b(x_ab, training=True)
            e_ba = self.enc_a(x_ba, training=True)
            terms = {
                "rec_a": (hp.lambda_rec, losses.l1(x_aa, x_a)),
                "rec_b": (hp.lambda_rec, losses.l1(x_bb, x_b)),
                "dann": (hp.lambda_dann, self.domain_adversarial_term(e_a, e_b)),
                "sem_ab": (hp.lambda_sem, losses.l1(e_ab, e_a)),
                "sem_ba": (hp.lambda_sem, losses.l1(e_ba, e_b)),
                "adv_ab": (hp.lambda_gan, self.gan.generator(self.disc_b(x_ab, training=True))),
                "adv_ba": (hp.lambda_gan, self.gan.generator(self.disc_a(x_ba, training=True))),
            }
            gen_loss, logs = self.weighted_loss("gen_loss", terms)
        self.step("gen", tape, gen_loss)

        fake_b, fake_a = tf.stop_gradient(x_ab), tf.stop_gradient(x_ba)
        with tf.GradientTape() as tape:
            terms = {
                **self.adversarial_terms("a", self.disc_a, x_a, fake_a, hp.lambda_gan),
                **self.adversarial_terms("b", self.disc_b, x_b, fake_b, hp.lambda_gan),
            }
            if hp.domain_adversarial == "disc":
                z_a, z_b = tf.stop_gradient(e_a), tf.stop_gradient(e_b)
                terms.update(self.adversarial_terms("z", self.disc_z, z_a, z_b, hp.lambda_dann))
            disc_loss, disc_logs = self.weighted_loss("disc_loss", terms)
        self.step("disc", tape, disc_loss)
        return {**logs, **disc_logs}

    # -- inference: paths and sample rows from EncoderDecoderPaths (two_way.py) ---------------
    PATH_DESCRIPTIONS = ("e_a -> shared embedding -> d_b", "e_b -> shared embedding -> d_a")
