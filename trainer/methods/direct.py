"""Direct translation: one generator against a target-domain discriminator, nothing else.

The "ignore the problem" baseline of the unsupervised family: G_ab maps A to B and the only
signal is a GAN loss on B, ``adv = gan.generator(D_b(G_ab(x_a)))``, weight 1 (no cycle, no
identity, no content term). Nothing asks G to keep what the input shows, so it works only as
far as a shallow G's inductive bias keeps the input: for close domains (mnist ->
mnist_inverted, mnist -> mnist_m). ``--gen_depth`` deepens the generator (more residual
blocks at the bottleneck); a deep G can reach any target image from any input and stops
preserving it. Generator: the CycleGAN ResNet generator; discriminator: PatchGAN.

No paper of its own: it is the "GAN alone" row of the loss ablation of CycleGAN (Zhu et
al., arXiv 1703.10593) with one generator, and the baseline DTN (arXiv 1611.02200) and
the later two-way methods improve on. ``--gen_depth`` counts residual blocks; ``--gan_loss``
is the shared vocabulary (LSGAN by default, as CycleGAN).
"""

import tensorflow as tf

from trainer.methods.base import HParam, TranslationModel
from trainer.methods.hparams import NORMS
from trainer.methods.paths import image_path
from trainer.networks import patch_discriminator, resnet_generator


class Direct(TranslationModel):
    DATA = "unpaired"
    CAPABILITIES = frozenset()
    HPARAMS = {
        "gen_depth": HParam(
            1,
            "Residual blocks at the generator's bottleneck (0 = a plain encoder-decoder): "
            "deeper generators stop preserving the input.",
            shape=True,
        ),
        "disc_layers": HParam(3, "Stride-2 layers of the PatchGAN discriminator.", shape=True),
        "norm": HParam(
            "instance",
            "Normalization in G and D: instance, batch, layer or none.",
            shape=True,
            choices=NORMS,
        ),
    }
    SMOKE_HPARAMS = {"filters": 4, "gen_depth": 1, "disc_layers": 2}

    @classmethod
    def validate_config(cls, config):
        super().validate_config(config)
        if config.hparams.gen_depth < 0:
            raise ValueError(
                f"--gen_depth must be >= 0 (residual blocks), got {config.hparams.gen_depth}."
            )

    def build_networks(self):
        hp, size = self.hp, self.image_size
        self.gen_ab = resnet_generator(
            size, filters=hp.filters, n_blocks=hp.gen_depth, norm=hp.norm, name="gen_ab"
        )
        self.disc_b = patch_discriminator(
            size, filters=hp.filters, n_layers=hp.disc_layers, norm=hp.norm, name="disc_b"
        )

    def players(self):
        return {"gen": [self.gen_ab], "disc": [self.disc_b]}

    def train_step(self, batch):
        x_a, x_b = batch["x_a"], batch["x_b"]
        with tf.GradientTape() as tape:
            x_ab = self.gen_ab(x_a, training=True)
            terms = {"adv_ab": (1.0, self.gan.generator(self.disc_b(x_ab, training=True)))}
            gen_loss, logs = self.weighted_loss("gen_loss", terms)
        self.step("gen", tape, gen_loss)

        fake_b = tf.stop_gradient(x_ab)
        with tf.GradientTape() as tape:
            terms = self.adversarial_terms("b", self.disc_b, x_b, fake_b)
            disc_loss, disc_logs = self.weighted_loss("disc_loss", terms)
        self.step("disc", tape, disc_loss)
        return {**logs, **disc_logs}

    def translation_paths(self):
        d = self.config.data
        return {"a2b": image_path(self.gen_ab, d.domain_a, d.domain_b, "G_ab")}

    def sample_images(self, batch):
        x_a = batch["x_a"]
        return {"a2b": [x_a, self.gen_ab(x_a, training=False)]}
