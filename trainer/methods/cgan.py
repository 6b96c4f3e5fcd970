"""Conditional GAN (Mirza & Osindero 2014) on DCGAN networks: (noise, class) to image.

G(z, y) takes the class one-hot concatenated to z, as in the paper. The discriminator is
conditioned by projection (Miyato & Koyama 2018), D(x, y) = psi(phi(x)) + <embed(y), phi(x)>,
rather than by concatenating y to its input. Why: a one-hot tiled over the image's channels
meets D's first convolution only, where it is a constant bias per class that D can learn to
ignore early in training, so G gets little pressure to draw the class asked for; projection
puts the class on D's last features, where the logit is the inner product of the class
embedding with what D has recognised, which Miyato & Koyama show gives better class fidelity
(and it fits every ``--gan_loss``, including the hinge and WGAN-GP losses).

Training: D sees real pairs (x, y) and generated pairs (G(z, y), y) with the real batch's
classes; G is trained on classes drawn uniformly. Everything else is as in ``gan.GAN``.

Path ``generate``: (``z`` [N, latent_dim] ~ N(0, 1), ``label`` one-hot [N, num_classes] with
labels "0" ... "9") -> ``image`` [N, S, S, 3] in [-1, 1]. The class input is named ``label``:
exported signatures name their inputs as Python parameters, and ``class`` is a keyword.
"""

import tensorflow as tf

from trainer.methods.base import HParam
from trainer.methods.gan import GAN, SAMPLE_SEED
from trainer.methods.paths import Image, Noise, OneHot, Path, normal


class CGAN(GAN):
    DATA = "labeled"
    CAPABILITIES = frozenset({"noise_prior", "conditional"})
    CONDITIONAL = True
    HPARAMS = {
        "num_classes": HParam(10, "Classes G and D are conditioned on.", shape=True),
    }
    SMOKE_HPARAMS = {**GAN.SMOKE_HPARAMS}

    @property
    def num_classes(self):
        return self.hp.num_classes

    @property
    def class_labels(self):
        return tuple(str(i) for i in range(self.num_classes))

    def one_hot(self, classes):
        return tf.one_hot(tf.cast(classes, tf.int32), self.num_classes, dtype=tf.float32)

    def generate(self, z, classes=None, training=False):
        if classes is None:
            raise ValueError("cgan generates for given classes: pass one-hot classes.")
        return self.gen([z, classes], training=training)

    def discriminate(self, x, classes=None, training=True):
        return self.disc([x, classes], training=training)

    def fake_classes(self, n):
        return self.one_hot(tf.random.uniform([n], 0, self.num_classes, tf.int32))

    def translate(self, x, direction="generate"):
        """``generate``: G(z, y) for ``x`` = (codes [N, latent_dim], one-hot classes [N, K])."""
        if direction != "generate":
            raise ValueError(f"cgan has one path, generate; got {direction!r}.")
        z, classes = x
        return self.generate(
            tf.convert_to_tensor(z, tf.float32), tf.convert_to_tensor(classes, tf.float32)
        )

    def sample(self, n, classes=None, seed=SAMPLE_SEED):
        """n images of ``classes`` (int ids [n]; default 0, 1, 2 ... cycling)."""
        if classes is None:
            classes = tf.range(n) % self.num_classes
        return self.generate(self.z(n, seed), self.one_hot(classes), training=False)

    def translation_paths(self):
        return {
            "generate": Path(
                model=self.gen,
                inputs=(Noise("z", normal()), OneHot("label", labels=self.class_labels)),
                outputs=(Image("image"),),
                target_domain=self.config.data.domain_a,
                description="G(z, y), z ~ N(0, I): a new image of class y",
            )
        }

    def sample_images(self, batch):
        """One row per class, eight samples each, from fixed codes."""
        n = 8
        return {
            "classes": [
                self.sample(n, tf.fill([n], k), seed=(SAMPLE_SEED[0], k))
                for k in range(self.num_classes)
            ]
        }
