"""DualGAN (Yi et al. 2017, arXiv 1704.02510): a primal GAN (A -> B) and a dual GAN (B -> A)
closing a loop, trained as Wasserstein GANs with an L1 reconstruction loss both ways.

The paper's choices, kept as defaults:
- G_A: A -> B and G_B: B -> A are U-Nets (``networks.unet_generator``, pix2pix's: skips,
  dropout 0.5 on the three innermost decoder layers); the critics D_B (judging domain
  B, the paper's D_A) and D_A are PatchGANs on a single image (``networks.unet.
  pair_discriminator`` with 3 channels; ``--patch_size=70`` as in the paper), their last
  layer without a bias (a WGAN critic's loss cannot see a constant, so it would never train).
- Normalization: instance norm in G and D (``--norm``). The paper trains pix2pix's networks at
  batch size 1, where batch norm is instance norm, and the authors' released code normalizes
  each image by its own moments; at this batch size (8) batch norm is a different operation.
  Measured at ``dualgan.flags`` for 1,000 steps, b2a (mnist_m -> mnist) transfer / domain
  score: batch norm 0.33 / 0.00 (G_B keeps the photo texture), instance norm 0.44 / 0.38; a2b
  0.67 / 1.00 and 0.69 / 1.00.
- Objective (the paper's eq. 1-3, u in A, v in B):
      L_D = [D_B(G_A(u)) - D_B(v)] + [D_A(G_B(v)) - D_A(u)]          (WGAN critics)
      L_G = lambda_a * |u - G_B(G_A(u))|_1 + lambda_b * |v - G_A(G_B(v))|_1
            - D_B(G_A(u)) - D_A(G_B(v))
  The paper sets lambda_U, lambda_V "within [100, 1000]" per task and gives no per-task
  values; both default to 1000 (``--lambda_a``, ``--lambda_b``), the top of that range. The
  paper does not say whether its L1 norms are sums or means; here they are per-pixel means.
- Lipschitz constraint: weight clipping to [-c, c] after each critic update (``--clip_weights
  =0.01``; the paper uses c in [0.01, 0.1]). ``--gradient_penalty=10 --clip_weights=0`` trains
  WGAN-GP critics instead.
- ``--n_critic=2``: one training step is two critic updates, each on its own batch, then one
  generator update on the last of them (the paper uses 2-4 critic updates per generator
  update and samples a fresh batch for the generator; the data pipeline hands over the
  ``n_critic`` batches concatenated).
- RMSProp at 5e-5 for every player (``OPTIMIZER``; the paper, following WGAN: momentum-based
  optimizers such as Adam made training unstable), decaying linearly to 0 over the second
  half of ``--train_steps`` (the critics' schedule counts their ``n_critic`` updates per step).

Where this departs from the paper: the generators take no explicit noise; the paper's noise z
is dropout, kept on at test time there. Here dropout acts only while training, so the exported
paths are deterministic (as in pix2pix.py).

Paths ``a2b`` (G_A) and ``b2a`` (G_B): ``image`` -> ``translated``, both in [-1, 1].
"""

import keras
import tensorflow as tf

from trainer import losses
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.hparams import GAN_LOSSES
from trainer.methods.two_way import cycle_samples
from trainer.networks.unet import PATCH_SIZES, pair_discriminator, unet_generator


class DualGAN(TranslationModel):
    DATA = "unpaired"
    CAPABILITIES = frozenset()
    OPTIMIZER = "rmsprop"
    HPARAMS = {
        "lr": HParam(5e-5, "RMSProp learning rate of every player (DualGAN: 5e-5)."),
        "gan_loss": HParam(
            "wgan",
            "Adversarial loss: wgan (DualGAN's, needs --clip_weights or --gradient_penalty), "
            "lsgan, vanilla or hinge.",
            choices=GAN_LOSSES,
        ),
        "clip_weights": HParam(
            0.01,
            "Clip every critic weight to [-C, C] after each of its updates (DualGAN: 0.01; "
            "0 = off, e.g. with --gradient_penalty).",
        ),
        "lambda_a": HParam(
            1000.0, "Weight lambda_U of the L1 reconstruction of domain A (A -> B -> A)."
        ),
        "lambda_b": HParam(
            1000.0, "Weight lambda_V of the L1 reconstruction of domain B (B -> A -> B)."
        ),
        "n_critic": HParam(2, "Critic updates per generator update (one training step)."),
        "patch_size": HParam(
            70, "Receptive field of the critics in px: 1 (PixelGAN), 16, 70 or 286.", shape=True
        ),
        "norm": HParam(
            "instance",
            "Normalization in G and D: instance (the paper's batch norm at its batch size 1), "
            "batch or none.",
            shape=True,
            choices=("batch", "instance", "none"),
        ),
        "dropout": HParam(0.5, "Dropout of G's three innermost decoder layers (training only)."),
        "unet_depth": HParam(
            -1, "Downsamplings of each U-Net; -1 = to 1x1, at most 8.", shape=True
        ),
    }
    # Tiny settings for the tests' smoke runs: below 24 px only the 1 and 16 px PatchGANs fit;
    # one critic update per step (test_dualgan.py checks n_critic > 1).
    SMOKE_HPARAMS = {"filters": 4, "patch_size": 16, "unet_depth": 3, "n_critic": 1}

    @classmethod
    def validate_config(cls, config):
        super().validate_config(config)  # choices, the GAN vocabulary
        hp = config.hparams
        if hp.n_critic < 1:
            raise ValueError(f"--n_critic must be >= 1, got {hp.n_critic}.")
        if hp.patch_size not in PATCH_SIZES:
            raise ValueError(
                f"--patch_size={hp.patch_size} is not one of the PatchGAN receptive fields: "
                f"choose {', '.join(map(str, PATCH_SIZES))}."
            )

    def build_networks(self):
        hp, size = self.hp, self.image_size
        gen = dict(filters=hp.filters, depth=hp.unet_depth, norm=hp.norm, dropout=hp.dropout)
        # No bias on the critics' logits: the WGAN loss D(fake) - D(real) cancels it, so its
        # gradient is always 0.
        disc = dict(
            patch_size=hp.patch_size,
            in_channels=3,
            filters=hp.filters,
            norm=hp.norm,
            logits_bias=False,
        )
        self.gen_ab = unet_generator(size, **gen, name="gen_ab")
        self.gen_ba = unet_generator(size, **gen, name="gen_ba")
        self.disc_a = pair_discriminator(size, **disc, name="disc_a")
        self.disc_b = pair_discriminator(size, **disc, name="disc_b")
        # Dropout's random state: Keras leaves it out of the checkpoint's object graph, so a
        # resumed run would replay the dropout masks of its first steps without this.
        self.dropout_seeds = tf.Module(name="dropout_seeds")
        self.dropout_seeds.states = [
            layer.seed_generator.state
            for gen in (self.gen_ab, self.gen_ba)
            for layer in gen.layers
            if isinstance(layer, keras.layers.Dropout)
        ]

    def checkpoint_items(self):
        return {"dropout_seeds": self.dropout_seeds}

    def players(self):
        return {"gen": [self.gen_ab, self.gen_ba], "disc": [self.disc_a, self.disc_b]}

    def updates_per_step(self):
        """The critics are updated ``n_critic`` times per step: their schedule counts those
        updates, so every rate decays over the same training steps."""
        return {"disc": self.hp.n_critic}

    def critic_terms(self, x_a, x_b):
        """Both critics' terms on real images and the generators' (fixed) translations."""
        fake_b = tf.stop_gradient(self.gen_ab(x_a, training=True))
        fake_a = tf.stop_gradient(self.gen_ba(x_b, training=True))
        return {
            **self.adversarial_terms("a", self.disc_a, x_a, fake_a),
            **self.adversarial_terms("b", self.disc_b, x_b, fake_b),
        }

    def generator_terms(self, x_a, x_b):
        hp = self.hp
        x_ab = self.gen_ab(x_a, training=True)
        x_ba = self.gen_ba(x_b, training=True)
        return {
            "adv_ab": (1.0, self.gan.generator(self.disc_b(x_ab, training=True))),
            "adv_ba": (1.0, self.gan.generator(self.disc_a(x_ba, training=True))),
            "recon_a": (hp.lambda_a, losses.l1(self.gen_ba(x_ab, training=True), x_a)),
            "recon_b": (hp.lambda_b, losses.l1(self.gen_ab(x_ba, training=True), x_b)),
        }

    def train_step(self, batch):
        n, size = self.hp.n_critic, self.image_size
        xs_a = tf.reshape(batch["x_a"], [n, -1, size, size, 3])
        xs_b = tf.reshape(batch["x_b"], [n, -1, size, size, 3])
        for i in range(n):
            with tf.GradientTape() as tape:
                disc_loss, d_logs = self.weighted_loss(
                    "disc_loss", self.critic_terms(xs_a[i], xs_b[i])
                )
            self.step("disc", tape, disc_loss)

        with tf.GradientTape() as tape:
            gen_loss, g_logs = self.weighted_loss(
                "gen_loss", self.generator_terms(xs_a[-1], xs_b[-1])
            )
        self.step("gen", tape, gen_loss)
        return {**g_logs, **d_logs}

    def translation_paths(self):
        return self.two_way_paths(self.gen_ab, self.gen_ba, "G_A: A -> B", "G_B: B -> A")

    def sample_images(self, batch):
        return cycle_samples(
            batch,
            lambda x: self.gen_ab(x, training=False),
            lambda x: self.gen_ba(x, training=False),
        )
