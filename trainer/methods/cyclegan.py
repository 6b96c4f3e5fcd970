"""CycleGAN (Zhu et al. 2017): two generators, two PatchGANs, cycle and identity L1, image pool.

``--ablation`` trains the paper's loss ablations (its Table 4) with the same networks, by
choosing which generator terms enter the objective:

- ``none``: the full objective, adversarial both ways + forward and backward cycle + identity;
- ``gan_only``: the adversarial terms alone (nothing ties a translation to its input);
- ``cycle_only``: both cycle terms alone (no adversarial term: nothing pulls a translation
  into the other domain; the discriminators still train and log how far off it is);
- ``forward``: adversarial + the forward cycle A -> B -> A;
- ``backward``: adversarial + the backward cycle B -> A -> B.

The ablations leave out the identity term, as the paper's ablation does; the variables are
those of the full model, so an ablation's checkpoint loads wherever CycleGAN's does.
"""

import tensorflow as tf

from trainer import losses
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.hparams import NORMS
from trainer.methods.image_pool import ImagePool
from trainer.methods.two_way import cycle_samples
from trainer.networks import patch_discriminator, resnet_generator

# --ablation: the generator terms each setting keeps.
ABLATIONS = {
    "none": frozenset({"adversarial", "forward", "backward", "identity"}),
    "gan_only": frozenset({"adversarial"}),
    "cycle_only": frozenset({"forward", "backward"}),
    "forward": frozenset({"adversarial", "forward"}),
    "backward": frozenset({"adversarial", "backward"}),
}


class CycleGAN(TranslationModel):
    DATA = "unpaired"
    CAPABILITIES = frozenset()
    HPARAMS = {
        "lambda_cycle": HParam(10.0, "Weight of the cycle-consistency L1 loss."),
        "lambda_identity": HParam(
            0.5, "Weight of the identity loss, relative to --lambda_cycle (0 = off)."
        ),
        "pool_size": HParam(
            50, "Images in each discriminator's history pool (0 = off).", shape=True
        ),
        "gen_blocks": HParam(
            -1, "Residual blocks per generator; -1 = 9 at >= 256 px, else 6.", shape=True
        ),
        "disc_layers": HParam(3, "Stride-2 layers of the PatchGAN discriminators.", shape=True),
        "norm": HParam(
            "instance",
            "Normalization in G and D: instance, batch, layer or none.",
            shape=True,
            choices=NORMS,
        ),
        "ablation": HParam(
            "none",
            "Loss ablation (the paper's Table 4): none (the full objective), gan_only, "
            "cycle_only, forward (GAN + cycle A -> B -> A), backward (GAN + cycle B -> A -> B); "
            "the ablations leave out the identity term.",
            choices=tuple(ABLATIONS),
        ),
    }
    # Tiny settings for the tests' smoke runs (the contract test, the flagfile test).
    SMOKE_HPARAMS = {"filters": 4, "gen_blocks": 1, "disc_layers": 2, "pool_size": 2}

    def build_networks(self):
        hp, size = self.hp, self.image_size
        blocks = hp.gen_blocks if hp.gen_blocks >= 0 else (9 if size >= 256 else 6)
        gen = dict(image_size=size, filters=hp.filters, n_blocks=blocks, norm=hp.norm)
        disc = dict(image_size=size, filters=hp.filters, n_layers=hp.disc_layers, norm=hp.norm)
        self.gen_ab = resnet_generator(**gen, name="gen_ab")
        self.gen_ba = resnet_generator(**gen, name="gen_ba")
        self.disc_a = patch_discriminator(**disc, name="disc_a")
        self.disc_b = patch_discriminator(**disc, name="disc_b")
        self.pool_a = ImagePool(hp.pool_size, (size, size, 3), name="pool_a")
        self.pool_b = ImagePool(hp.pool_size, (size, size, 3), name="pool_b")

    def players(self):
        return {"gen": [self.gen_ab, self.gen_ba], "disc": [self.disc_a, self.disc_b]}

    def checkpoint_items(self):
        return {"pool_a": self.pool_a, "pool_b": self.pool_b}

    def generator_terms(self, x_a, x_b):
        """G's named, weighted terms as ``--ablation`` selects them; also returns the
        translations (x_ab, x_ba). ``cycle`` is the sum of the cycle directions kept."""
        hp = self.hp
        keep = ABLATIONS[hp.ablation]
        x_ab = self.gen_ab(x_a, training=True)
        x_ba = self.gen_ba(x_b, training=True)
        terms = {}
        if "adversarial" in keep:
            terms["adv_ab"] = (1.0, self.gan.generator(self.disc_b(x_ab, training=True)))
            terms["adv_ba"] = (1.0, self.gan.generator(self.disc_a(x_ba, training=True)))
        cycles = []
        if "forward" in keep:
            cycles.append(losses.l1(self.gen_ba(x_ab, training=True), x_a))
        if "backward" in keep:
            cycles.append(losses.l1(self.gen_ab(x_ba, training=True), x_b))
        if cycles:
            terms["cycle"] = (hp.lambda_cycle, tf.add_n(cycles))
        if "identity" in keep and hp.lambda_identity > 0:
            # G_ab should leave an image already in B unchanged (and G_ba one in A).
            identity = losses.l1(self.gen_ab(x_b, training=True), x_b) + losses.l1(
                self.gen_ba(x_a, training=True), x_a
            )
            terms["identity"] = (hp.lambda_cycle * hp.lambda_identity, identity)
        return terms, x_ab, x_ba

    def train_step(self, batch):
        x_a, x_b = batch["x_a"], batch["x_b"]
        with tf.GradientTape() as tape:
            terms, x_ab, x_ba = self.generator_terms(x_a, x_b)
            gen_loss, logs = self.weighted_loss("gen_loss", terms)
        self.step("gen", tape, gen_loss)

        fake_b = tf.stop_gradient(self.pool_b.query(x_ab))
        fake_a = tf.stop_gradient(self.pool_a.query(x_ba))
        with tf.GradientTape() as tape:
            terms = {
                **self.adversarial_terms("a", self.disc_a, x_a, fake_a),
                **self.adversarial_terms("b", self.disc_b, x_b, fake_b),
            }
            disc_loss, disc_logs = self.weighted_loss("disc_loss", terms)
        self.step("disc", tape, disc_loss)
        return {**logs, **disc_logs}

    def translation_paths(self):
        return self.two_way_paths(self.gen_ab, self.gen_ba, "G_ab", "G_ba")

    def sample_images(self, batch):
        return cycle_samples(
            batch,
            lambda x: self.gen_ab(x, training=False),
            lambda x: self.gen_ba(x, training=False),
        )
