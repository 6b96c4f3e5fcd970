"""pix2pix (Isola et al. 2017): supervised translation of aligned pairs (x, y).

The paper's choices, kept as defaults:
- G: a U-Net with skip connections (``networks.unet_generator``), batch norm, dropout 0.5 on
  its three innermost decoder layers while training. The paper keeps dropout on at test time
  as its noise source; the exported ``a2b`` path runs with dropout off (and batch norm's
  moving statistics), so it is deterministic: the same image always gives the same output.
- D: a PatchGAN on the pair concat(x, y), receptive field ``--patch_size`` of 1 (PixelGAN),
  16, 70 (default) or 286 px, as in the paper's ablation.
- Objective: cGAN + L1, G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G) with
  ``--lambda_l1=100``; D's loss halved to slow it relative to G; Adam 2e-4, beta_1 0.5.
- ``--objective`` reproduces the paper's loss ablation: ``l1`` (L1 only, no D), ``gan``
  (D sees y alone, no L1), ``cgan`` (D sees (x, y), no L1), ``gan_l1`` and ``cgan_l1``.

Data: the ``paired`` kind (aligned digit domains, or A|B side-by-side folders with
``--direction=AtoB|BtoA``). Path ``a2b``: ``image`` -> ``translated``, both in [-1, 1].
"""

import keras
import tensorflow as tf

from trainer import losses
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.hparams import GAN_LOSSES
from trainer.methods.paths import image_path
from trainer.networks.unet import PATCH_SIZES, pair_discriminator, unet_generator

OBJECTIVES = ("cgan_l1", "l1", "gan", "cgan", "gan_l1")


class Pix2Pix(TranslationModel):
    DATA = "paired"
    CAPABILITIES = frozenset()
    HPARAMS = {
        "filters": HParam(64, "Width of the first layer of G and D.", shape=True),
        "gan_loss": HParam(
            "vanilla",
            "Adversarial loss: vanilla (pix2pix's), lsgan, hinge or wgan (needs "
            "--gradient_penalty or --clip_weights).",
            choices=GAN_LOSSES,
        ),
        "lambda_l1": HParam(100.0, "Weight of the L1 loss to the paired target."),
        "objective": HParam(
            "cgan_l1",
            "Loss ablation: cgan_l1 (the paper's), l1 (no D), gan (D on y alone), cgan, gan_l1.",
            shape=True,
            choices=OBJECTIVES,
        ),
        "patch_size": HParam(
            70, "Receptive field of D in px: 1 (PixelGAN), 16, 70 or 286.", shape=True
        ),
        "norm": HParam(
            "batch",
            "Normalization in G and D: batch, instance or none.",
            shape=True,
            choices=("batch", "instance", "none"),
        ),
        "dropout": HParam(0.5, "Dropout of G's three innermost decoder layers (training only)."),
        "unet_depth": HParam(
            -1, "Downsamplings of the U-Net; -1 = to 1x1, at most 8 (the paper's).", shape=True
        ),
        "direction": HParam(
            "AtoB",
            "Paired folders: AtoB translates the left half into the right, BtoA back.",
            choices=("AtoB", "BtoA"),
        ),
    }
    # Tiny settings for the tests' smoke runs: below 24 px only the 1 and 16 px PatchGANs fit.
    SMOKE_HPARAMS = {"filters": 4, "patch_size": 16, "unet_depth": 3}

    @classmethod
    def validate_config(cls, config):
        super().validate_config(config)  # choices, the GAN vocabulary
        hp = config.hparams
        if hp.patch_size not in PATCH_SIZES:
            raise ValueError(
                f"--patch_size={hp.patch_size} is not one of the paper's receptive fields: "
                f"choose {', '.join(map(str, PATCH_SIZES))}."
            )

    @property
    def adversarial(self):
        return self.hp.objective != "l1"

    @property
    def conditional_disc(self):
        return self.hp.objective.startswith("cgan")

    @property
    def uses_l1(self):
        return self.hp.objective.endswith("l1")

    def build_networks(self):
        hp, size = self.hp, self.image_size
        self.gen = unet_generator(
            size, filters=hp.filters, depth=hp.unet_depth, norm=hp.norm, dropout=hp.dropout
        )
        self.disc = None
        if self.adversarial:
            self.disc = pair_discriminator(
                size,
                hp.patch_size,
                in_channels=6 if self.conditional_disc else 3,
                filters=hp.filters,
                norm=hp.norm,
            )

        # Dropout's random state: Keras leaves it out of the checkpoint's object graph, so a
        # resumed run would replay the dropout masks of its first steps without this.
        self.dropout_seeds = tf.Module(name="dropout_seeds")
        self.dropout_seeds.states = [
            layer.seed_generator.state
            for layer in self.gen.layers
            if isinstance(layer, keras.layers.Dropout)
        ]

    def checkpoint_items(self):
        return {"dropout_seeds": self.dropout_seeds}

    def players(self):
        players = {"gen": [self.gen]}
        if self.adversarial:
            players["disc"] = [self.disc]
        return players

    def pair(self, x, y):
        """What D sees: concat(x, y) on channels (cGAN), or y alone (GAN)."""
        return tf.concat([x, y], axis=-1) if self.conditional_disc else y

    def train_step(self, batch):
        hp = self.hp
        x, y = batch["x_a"], batch["x_b"]
        with tf.GradientTape() as tape:
            fake = self.gen(x, training=True)
            g_terms = {}
            if self.adversarial:
                logits = self.disc(self.pair(x, fake), training=True)
                g_terms["g_adv"] = (1.0, self.gan.generator(logits))
            # Weight 0 when the objective has no L1: reported, not trained on.
            g_terms["l1"] = (hp.lambda_l1 if self.uses_l1 else 0.0, losses.l1(fake, y))
            gen_loss, out = self.weighted_loss("gen_loss", g_terms)
        self.step("gen", tape, gen_loss)
        if not self.adversarial:
            return out

        fake = tf.stop_gradient(fake)

        def critic(images, training=True):
            return self.disc(self.pair(x, images), training=training)

        with tf.GradientTape() as tape:
            # D's GAN loss halved, as in the paper, to slow D down relative to G.
            d_terms = self.adversarial_terms("d", critic, y, fake, weight=0.5)
            disc_loss, d_logs = self.weighted_loss("disc_loss", d_terms)
        self.step("disc", tape, disc_loss)
        return {**out, **d_logs}

    # -- inference ------------------------------------------------------------------------
    def domains(self):
        """(source, target) domain names of the a2b path."""
        d = self.config.data
        a, b = ("A", "B") if d.dataset == "folder" else (d.domain_a, d.domain_b)
        return (a, b) if self.hp.direction == "AtoB" else (b, a)

    def translate(self, x, direction="a2b"):
        """G(x) with dropout off (deterministic), for a batch in [-1, 1]."""
        if direction != "a2b":
            raise ValueError(f"pix2pix has one path, a2b; got {direction!r}.")
        return self.gen(tf.convert_to_tensor(x, tf.float32), training=False)

    def translation_paths(self):
        source, target = self.domains()
        return {
            "a2b": image_path(
                self.gen,
                source,
                target,
                "U-Net G(x), dropout off: deterministic (the paper samples dropout at test time)",
            )
        }

    def sample_images(self, batch):
        x, y = batch["x_a"][:8], batch["x_b"][:8]
        return {"a2b": [x, self.translate(x), y]}
