"""GAN (Goodfellow et al. 2014) with DCGAN networks (Radford et al. 2016): noise to image.

The baseline of the family: G maps z ~ N(0, I) to an image of ``--domain_a``, D tells real
from generated. DCGAN's choices are the defaults: strided (transposed) 4x4 convolutions,
batch norm in G and D (none on D's first layer), ReLU in G, LeakyReLU(0.2) in D, tanh output,
Adam 2e-4 with beta_1 0.5, the non-saturating loss (``--gan_loss=vanilla``).

``--gan_loss`` picks the adversarial loss from ``trainer.losses``: vanilla, lsgan, hinge, or
wgan, which needs ``--gradient_penalty`` (WGAN-GP; Gulrajani et al. use 10 and
``--n_critic=5``). With a gradient penalty D uses layer norm instead of batch norm
(``--disc_norm=auto``): the penalty is per example, and batch norm couples the examples.
One training step is ``--n_critic`` discriminator updates, each on its own batch, then one
generator update.

Path ``generate``: ``z`` [N, latent_dim] ~ N(0, 1) -> ``image`` [N, S, S, 3] in [-1, 1].
"""

import tensorflow as tf

from trainer.methods.base import HParam, TranslationModel
from trainer.methods.hparams import GAN_LOSSES, NORMS
from trainer.methods.paths import Image, Noise, Path, normal
from trainer.networks.dcgan import dcgan_discriminator, dcgan_generator

SAMPLE_SEED = (20140610, 0)


class GAN(TranslationModel):
    DATA = "images"
    CAPABILITIES = frozenset({"noise_prior"})
    CONDITIONAL = False
    HPARAMS = {
        "latent_dim": HParam(100, "Size of the noise vector z ~ N(0, I).", shape=True),
        "filters": HParam(64, "Width of G's last hidden layer and D's first layer.", shape=True),
        "gan_loss": HParam(
            "vanilla",
            "Adversarial loss: vanilla (DCGAN's), lsgan, hinge or wgan (needs "
            "--gradient_penalty or --clip_weights).",
            choices=GAN_LOSSES,
        ),
        "gradient_penalty": HParam(
            0.0,
            "Weight of the WGAN-GP gradient penalty in D's update (0 = off; 10 is the paper's). "
            "With --disc_norm=auto it also switches D from batch to layer norm, so a resumed "
            "run must keep it.",
            shape=True,
        ),
        "n_critic": HParam(1, "Discriminator updates per generator update (one training step)."),
        "gen_norm": HParam(
            "batch",
            "Normalization in G: batch, instance, layer or none.",
            shape=True,
            choices=NORMS,
        ),
        "disc_norm": HParam(
            "auto",
            "Normalization in D: auto (batch; layer with a gradient penalty), batch, layer, "
            "instance or none.",
            shape=True,
            choices=("auto", *NORMS),
        ),
    }
    # Tiny settings for the tests' smoke runs (the contract test, the flagfile test).
    SMOKE_HPARAMS = {"filters": 4, "latent_dim": 8}

    @classmethod
    def validate_config(cls, config):
        super().validate_config(config)  # choices, the GAN vocabulary
        hp = config.hparams
        if hp.n_critic < 1:
            raise ValueError(f"--n_critic must be >= 1, got {hp.n_critic}.")

    @property
    def num_classes(self):
        return 0

    def disc_norm(self):
        norm = self.hp.disc_norm
        if norm == "auto":
            return "layer" if self.hp.gradient_penalty > 0 else "batch"
        return norm

    def build_networks(self):
        hp, size = self.hp, self.image_size
        self.gen = dcgan_generator(
            size, hp.latent_dim, self.num_classes, filters=hp.filters, norm=hp.gen_norm
        )
        self.disc = dcgan_discriminator(
            size, self.num_classes, filters=hp.filters, norm=self.disc_norm()
        )

    def players(self):
        return {"gen": [self.gen], "disc": [self.disc]}

    def updates_per_step(self):
        """D is updated ``n_critic`` times per step (its schedule counts those updates)."""
        return {"disc": self.hp.n_critic}

    # -- conditioning hooks (cGAN overrides them) -----------------------------------------
    def generate(self, z, classes=None, training=False):
        return self.gen(z, training=training)

    def discriminate(self, x, classes=None, training=True):
        return self.disc(x, training=training)

    def fake_classes(self, n):
        return None

    def z(self, n, seed=None):
        shape = (n, self.hp.latent_dim)
        return tf.random.normal(shape) if seed is None else tf.random.stateless_normal(shape, seed)

    # -- training ---------------------------------------------------------------------------
    def critic_terms(self, x, classes):
        """D's GAN loss on (x, G(z)) and, with --gradient_penalty, its penalty (``gp_d``)."""
        fake = tf.stop_gradient(self.generate(self.z(tf.shape(x)[0]), classes, training=True))

        def critic(images, training=True):
            return self.discriminate(images, classes, training=training)

        return self.adversarial_terms("d", critic, x, fake)

    def generator_terms(self, n):
        classes = self.fake_classes(n)
        fake = self.generate(self.z(n), classes, training=True)
        return {"g_adv": (1.0, self.gan.generator(self.discriminate(fake, classes)))}

    def train_step(self, batch):
        k = self.hp.n_critic
        size = self.image_size
        xs = tf.reshape(batch["x"], [k, -1, size, size, 3])
        ys = tf.reshape(batch["y"], [k, -1]) if self.CONDITIONAL else None
        for i in range(k):
            classes = self.one_hot(ys[i]) if self.CONDITIONAL else None
            with tf.GradientTape() as tape:
                disc_loss, d_logs = self.weighted_loss(
                    "disc_loss", self.critic_terms(xs[i], classes)
                )
            self.step("disc", tape, disc_loss)
        with tf.GradientTape() as tape:
            g_terms = self.generator_terms(tf.shape(xs[0])[0])
            gen_loss, g_logs = self.weighted_loss("gen_loss", g_terms)
        self.step("gen", tape, gen_loss)
        return {**g_logs, **d_logs}

    # -- inference --------------------------------------------------------------------------
    def sample(self, n, classes=None, seed=SAMPLE_SEED):
        """n generated images in [-1, 1] (deterministic for a ``seed``)."""
        return self.generate(self.z(n, seed), classes, training=False)

    def translate(self, x, direction="generate"):
        """``generate``: G(z) for a batch of codes ``x`` [N, latent_dim]."""
        if direction != "generate":
            raise ValueError(f"{self.config.method} has one path, generate; got {direction!r}.")
        return self.generate(tf.convert_to_tensor(x, tf.float32), training=False)

    def translation_paths(self):
        return {
            "generate": Path(
                model=self.gen,
                inputs=(Noise("z", normal()),),
                outputs=(Image("image"),),
                target_domain=self.config.data.domain_a,
                description="G(z), z ~ N(0, I): a new image of the training domain",
            )
        }

    def sample_images(self, batch):
        """Four rows of eight samples from fixed codes (comparable across steps)."""
        return {"samples": [self.sample(8, seed=(SAMPLE_SEED[0], row)) for row in range(4)]}
