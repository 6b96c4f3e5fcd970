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

from trainer import losses
from trainer.methods import loss_terms
from trainer.methods.base import HParam, TranslationModel
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
            "Adversarial loss: vanilla (DCGAN's), lsgan, hinge or wgan (needs --gradient_penalty).",
        ),
        "gradient_penalty": HParam(0.0, "WGAN-GP weight (0 = off; --gan_loss=wgan needs it > 0)."),
        "n_critic": HParam(1, "Discriminator updates per generator update (one training step)."),
        "gen_norm": HParam(
            "batch", "Normalization in G: batch, instance, layer or none.", shape=True
        ),
        "disc_norm": HParam(
            "auto",
            "Normalization in D: auto (batch; layer with a gradient penalty), batch, layer, "
            "instance or none.",
            shape=True,
        ),
    }

    @classmethod
    def validate_config(cls, config):
        hp = config.hparams
        losses.gan_loss(hp.gan_loss)  # names the choices for an unknown one
        if hp.gan_loss == "wgan" and hp.gradient_penalty <= 0:
            raise ValueError(
                f"--gan_loss=wgan needs a Lipschitz constraint: pass --gradient_penalty=10 "
                f"(WGAN-GP), or choose --gan_loss=vanilla, lsgan or hinge for {config.method}."
            )
        if hp.gradient_penalty < 0:
            raise ValueError(f"--gradient_penalty must be >= 0, got {hp.gradient_penalty}.")
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
        self.validate_config(self.config)
        hp, size = self.hp, self.image_size
        self.gen = dcgan_generator(
            size, hp.latent_dim, self.num_classes, filters=hp.filters, norm=hp.gen_norm
        )
        self.disc = dcgan_discriminator(
            size, self.num_classes, filters=hp.filters, norm=self.disc_norm()
        )
        self.gan = losses.gan_loss(hp.gan_loss)

    def players(self):
        return {"gen": [self.gen], "disc": [self.disc]}

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
        hp = self.hp
        fake = tf.stop_gradient(self.generate(self.z(tf.shape(x)[0]), classes, training=True))
        terms = {
            "d_adv": (
                1.0,
                self.gan.discriminator(
                    self.discriminate(x, classes), self.discriminate(fake, classes)
                ),
            )
        }
        if hp.gradient_penalty > 0:

            def critic(images, training=True):
                return self.discriminate(images, classes, training=training)

            terms["gp"] = (hp.gradient_penalty, losses.gradient_penalty(critic, x, fake))
        return terms

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
                d_terms = self.critic_terms(xs[i], classes)
                disc_loss = self.mean(loss_terms.total(d_terms))
            self.step("disc", tape, disc_loss)
        with tf.GradientTape() as tape:
            g_terms = self.generator_terms(tf.shape(xs[0])[0])
            gen_loss = self.mean(loss_terms.total(g_terms))
        self.step("gen", tape, gen_loss)
        return {
            **loss_terms.logged(self.mean, g_terms, gen_loss, "gen_loss"),
            **loss_terms.logged(self.mean, d_terms, disc_loss, "disc_loss"),
        }

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
