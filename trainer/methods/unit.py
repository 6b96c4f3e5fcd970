"""UNIT (Liu, Breuel & Kautz 2017): coupled VAE-GANs with a shared latent space.

E1, E2 share their last layers and G1, G2 their first, so both domains map to one code z.
Objective (the paper's lambda0..lambda4 by name): VAE per domain (fixed-variance posterior,
L1 reconstruction, KL as the squared mean), GAN on the translations x_ab = G2(E1(x_a)) and
x_ba = G1(E2(x_b)), and cycle-consistency x_aba = G1(E2(x_ab)) with its KL terms. The cycle
term is the paper's L_CC1 (eq. 5) whole: lambda3 * [KL(q1(z|x_a)) + KL(q2(z|x_ab))] -
lambda4 * log p(x_a | z), so KL(q1(z|x_a)) is weighted lambda1 (VAE) + lambda3 (cycle), as
the objective is written; the authors' released code counts it once.

``--uda``: D1 and D2 share their high-level layers and a softmax classifier head trained
with source (A) labels; the generators also pull D's top features of each translation towards
those of its input (x_ab towards x_a and x_ba towards x_b: the constraint is symmetric, since
it needs no labels and the target domain's translations should keep their content as well).
``classify(x, "b")`` then labels target images.
"""

import tensorflow as tf

from trainer import losses
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.diff_augment import with_noise
from trainer.methods.hparams import NORMS
from trainer.methods.two_way import EncoderDecoderPaths
from trainer.methods.uda import UDAHead
from trainer.networks import coupled_discriminators, unit_decoders, unit_encoders


class UNIT(EncoderDecoderPaths, UDAHead, TranslationModel):
    DATA = "unpaired"
    CAPABILITIES = frozenset({"uda"})
    HPARAMS = {
        "lr": HParam(1e-4, "Adam learning rate of every player."),
        "weight_decay": HParam(
            1e-4, "Decoupled weight decay (AdamW) of every player; 0 = plain Adam."
        ),
        "lambda_gan": HParam(10.0, "UNIT lambda0: weight of the adversarial losses."),
        "lambda_kl": HParam(0.1, "UNIT lambda1: weight of the VAE KL (squared-mean) term."),
        "lambda_recon": HParam(100.0, "UNIT lambda2: weight of the VAE L1 reconstruction."),
        "lambda_cycle_kl": HParam(0.1, "UNIT lambda3: weight of the cycle's KL term."),
        "lambda_cycle": HParam(
            100.0, "UNIT lambda4: weight of the cycle L1 reconstruction a -> b -> a."
        ),
        "lambda_cycle_b": HParam(
            100.0,
            "UNIT lambda4 of the other cycle: weight of the L1 reconstruction b -> a -> b. Lower "
            "it when B holds detail A cannot show (a textured B, a plain A): a strong "
            "b -> a -> b cycle makes G1 hide B's texture in A's images as low-amplitude noise.",
        ),
        "cycle_noise": HParam(
            0.0,
            "Std of Gaussian noise added to each translation (x_ab, x_ba) before it is encoded "
            "again for the cycle (0 = off, as in the paper). Without it G1 can hide B's texture "
            "in A's images as a low-amplitude pattern that E1 reads back (steganography, arXiv "
            "1712.02950), so the cycle is kept while the visible digit is lost; the noise "
            "erases such a pattern.",
        ),
        "n_down": HParam(
            2, "Stride-2 downsamplings of the encoders (upsamplings of decoders).", shape=True
        ),
        "enc_blocks": HParam(3, "Domain-specific residual blocks per encoder.", shape=True),
        "dec_blocks": HParam(3, "Domain-specific residual blocks per decoder.", shape=True),
        "shared_blocks": HParam(
            1, "Residual blocks shared by E1/E2 (top) and by G1/G2 (bottom), each.", shape=True
        ),
        "disc_layers": HParam(3, "Stride-2 layers of the discriminators.", shape=True),
        "norm": HParam(
            "instance",
            "Normalization in G and D: instance, batch, layer or none.",
            shape=True,
            choices=NORMS,
        ),
        "lambda_cls_translated": HParam(
            1.0,
            "Weight of the --uda classification loss on translated source images x_ab "
            "(they keep their source label); 0 = off.",
        ),
        "lambda_feat": HParam(
            1.0,
            "Weight of the --uda L1 between D's top features of each translation and its "
            "input (x_ab and x_a, x_ba and x_b).",
        ),
    }
    SMOKE_HPARAMS = {
        "filters": 4,
        "enc_blocks": 1,
        "dec_blocks": 1,
        "shared_blocks": 1,
        "disc_layers": 2,
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
        # UDA shares every D layer but the first (domain-specific low-level statistics).
        self.disc_a, self.disc_b = coupled_discriminators(
            size,
            filters=hp.filters,
            n_layers=hp.disc_layers,
            shared_layers=hp.disc_layers - 1 if hp.uda else 0,
            num_classes=hp.num_classes if hp.uda else 0,
            norm="none",
            patch=True,
        )

    def players(self):
        return {
            "gen": [self.enc_a, self.enc_b, self.dec_a, self.dec_b],
            "disc": [self.disc_a, self.disc_b],
        }

    def train_step(self, batch):
        x_a, x_b = batch["x_a"], batch["x_b"]
        hp = self.hp
        with tf.GradientTape() as tape:
            mu_a = self.enc_a(x_a, training=True)
            mu_b = self.enc_b(x_b, training=True)
            z_a = losses.fixed_variance_sample(mu_a)
            z_b = losses.fixed_variance_sample(mu_b)
            x_aa = self.dec_a(z_a, training=True)
            x_bb = self.dec_b(z_b, training=True)
            x_ab = self.dec_b(z_a, training=True)
            x_ba = self.dec_a(z_b, training=True)
            mu_aba = self.enc_b(with_noise(x_ab, hp.cycle_noise), training=True)
            mu_bab = self.enc_a(with_noise(x_ba, hp.cycle_noise), training=True)
            x_aba = self.dec_a(losses.fixed_variance_sample(mu_aba), training=True)
            x_bab = self.dec_b(losses.fixed_variance_sample(mu_bab), training=True)
            d_ab = self.disc_b(x_ab, training=True)
            d_ba = self.disc_a(x_ba, training=True)
            # The paper's objective (eq. 7) by its weights lambda0..lambda4: VAE (recon + KL) per
            # domain, GAN on the translations, cycle (recon + KL of the re-encoding) both ways.
            terms = {
                "adv_ab": (hp.lambda_gan, self.gan.generator(d_ab["logits"])),
                "adv_ba": (hp.lambda_gan, self.gan.generator(d_ba["logits"])),
                "recon_a": (hp.lambda_recon, losses.l1(x_aa, x_a)),
                "recon_b": (hp.lambda_recon, losses.l1(x_bb, x_b)),
                "kl_a": (hp.lambda_kl, losses.unit_variance_kl(mu_a)),
                "kl_b": (hp.lambda_kl, losses.unit_variance_kl(mu_b)),
                "cycle_a": (hp.lambda_cycle, losses.l1(x_aba, x_a)),
                "cycle_b": (hp.lambda_cycle_b, losses.l1(x_bab, x_b)),
                # L_CC's KL half: the source code's KL and the re-encoding's (eq. 5).
                "cycle_kl_a": (
                    hp.lambda_cycle_kl,
                    losses.unit_variance_kl(mu_a) + losses.unit_variance_kl(mu_aba),
                ),
                "cycle_kl_b": (
                    hp.lambda_cycle_kl,
                    losses.unit_variance_kl(mu_b) + losses.unit_variance_kl(mu_bab),
                ),
            }
            if hp.uda:
                # Translation must keep what the shared D layers see in its input (its class).
                feat_ab = losses.l1(d_ab["features"], self.disc_a(x_a, training=True)["features"])
                feat_ba = losses.l1(d_ba["features"], self.disc_b(x_b, training=True)["features"])
                terms["feat"] = (hp.lambda_feat, feat_ab + feat_ba)
            gen_loss, logs = self.weighted_loss("gen_loss", terms)
        self.step("gen", tape, gen_loss)

        fake_b = tf.stop_gradient(x_ab)
        fake_a = tf.stop_gradient(x_ba)
        metrics = {}
        with tf.GradientTape() as tape:
            terms = {
                **self.adversarial_terms("a", self.disc_a, x_a, fake_a, hp.lambda_gan),
                **self.adversarial_terms("b", self.disc_b, x_b, fake_b, hp.lambda_gan),
            }
            if hp.uda:
                y_a = batch["y_a"]
                real_logits = self.disc_a(x_a, training=True)["class_logits"]
                fake_logits = self.disc_b(fake_b, training=True)["class_logits"]
                terms["cls_a"] = (
                    hp.lambda_cls,
                    losses.masked_softmax_cross_entropy(y_a, real_logits),
                )
                terms["cls_ab"] = (
                    hp.lambda_cls_translated,
                    losses.masked_softmax_cross_entropy(y_a, fake_logits),
                )
                metrics["acc_a"] = self.replica_share(losses.masked_accuracy(y_a, real_logits))
            disc_loss, disc_logs = self.weighted_loss("disc_loss", terms)
        self.step("disc", tape, disc_loss)
        return {**logs, **disc_logs, **metrics}

    # -- inference: paths and sample rows from EncoderDecoderPaths (two_way.py) ---------------
    PATH_DESCRIPTIONS = ("E1 -> G2 on the latent mean", "E2 -> G1 on the latent mean")
