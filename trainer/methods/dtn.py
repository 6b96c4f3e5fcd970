"""Domain Transfer Network (Taigman, Polyak & Wolf, arXiv 1611.02200).

G = g(f(x)): f is a digit classifier trained on the SOURCE domain's labels and then frozen;
g decodes its feature vector into a target-domain image. The generator minimises (the
paper's weights for digits, its SVHN -> MNIST setting: alpha = beta = 15, gamma = 0)

    L_G = L_GANG + alpha * L_CONST + beta * L_TID + gamma * L_TV
    L_GANG  = -log D_3(G(x_s)) - log D_3(G(x_t))     (both translations pass for real)
    L_CONST = ||f(x_s) - f(G(x_s))||^2               (f-constancy, --lambda_const)
    L_TID   = ||x_t - G(x_t)||^2                     (target identity, --lambda_tid)
    L_TV    = total variation of G(x_s)               (--lambda_tv)

and the three-way discriminator L_D = -log D_1(G(x_s)) - log D_2(G(x_t)) - log D_3(x_t)
(fake from source, fake from target, real target). Losses: ``trainer.losses.dtn``.

Choices where the paper is silent or that this toolkit makes:

- f is trained inside the run: its first ``--f_steps`` steps train f alone (softmax
  cross-entropy on the source labels ``y_a``, Adam at --lr); from then on f is frozen (in no
  player) and g and D train. The phase is the count of f's optimizer updates, which the
  checkpoint holds, so a run killed in either phase resumes in it; the logs carry ``f_phase``
  (1 while f trains, then 0), ``f_loss`` and ``f_acc``. Training batches carry the source
  labels only; target labels never reach the method. ``--f_steps=0`` keeps a random f (an
  ablation: features that know nothing of digits). The switch is a ``tf.cond`` around
  optimizer updates, which tf.distribute cannot synchronise across replicas: with
  --f_steps > 0, DTN trains on one replica (--strategy=default or one_device). The phase is
  ``trainer.methods.pretrain.PretrainPhase``, shared with XGAN's teacher.
- f's features are its penultimate dense layer, before the ReLU (``--feature_dim``); the
  paper took a layer of its own SVHN classifier.
- L_CONST and L_TID are mean squared errors (the paper's choice for digits), L_TV has B = 1.
- ``--gan_loss=vanilla`` (the default) is the paper's three-way softmax D. lsgan, hinge and
  wgan read D's "real target" log-odds against either fake class (``losses.realness``) as a
  binary score and apply that loss to real target vs each kind of fake; with vanilla that
  score gives exactly L_GANG. --gradient_penalty holds that score to norm 1.
- g has the DCGAN generator's layout, D is DCGAN-style with three logits
  (``trainer.networks.dtn_nets``).
"""

import keras
import tensorflow as tf

from trainer import losses
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.hparams import NORMS
from trainer.methods.paths import image_path
from trainer.methods.pretrain import PretrainPhase
from trainer.networks import dtn_discriminator, feature_classifier, feature_generator


class DTN(PretrainPhase, TranslationModel):
    DATA = "unpaired"
    CAPABILITIES = frozenset()
    SOURCE_LABELS = True  # f is a classifier of the source domain
    PHASE_PLAYER, PHASE_STEPS, PHASE_REST = "f", "f_steps", "g and D"
    HPARAMS = {
        "gan_loss": HParam(
            "vanilla",
            "Adversarial loss: vanilla = the paper's three-way softmax discriminator; lsgan, "
            "hinge or wgan (needs --gradient_penalty or --clip_weights) on D's real-target "
            "log-odds.",
            choices=("vanilla", "lsgan", "hinge", "wgan"),
        ),
        "lambda_const": HParam(15.0, "alpha: weight of the f-constancy loss ||f(x) - f(G(x))||^2."),
        "lambda_tid": HParam(15.0, "beta: weight of the target identity loss ||x_t - G(x_t)||^2."),
        "lambda_tv": HParam(0.0, "gamma: weight of the total variation of G(x_s)."),
        "f_steps": HParam(
            500,
            "First training steps that train f alone on the source labels; then f is frozen "
            "and g, D train (0 = a random frozen f, an ablation).",
        ),
        "feature_dim": HParam(128, "Width of f's feature vector (g's input).", shape=True),
        "num_classes": HParam(10, "Classes of the source labels f learns.", shape=True),
        "norm": HParam(
            "batch",
            "Normalization in g and D: batch (DCGAN's), instance, layer or none.",
            shape=True,
            choices=NORMS,
        ),
    }
    SMOKE_HPARAMS = {"filters": 4, "feature_dim": 8, "f_steps": 0}

    @classmethod
    def validate_config(cls, config):
        super().validate_config(config)
        cls.validate_phase(config)
        hp = config.hparams
        for key in ("feature_dim", "num_classes"):
            if hp[key] < 1:
                raise ValueError(f"--{key} must be >= 1, got {hp[key]}.")

    def build_networks(self):
        hp, size = self.hp, self.image_size
        self.f_net = feature_classifier(
            size, filters=hp.filters, feature_dim=hp.feature_dim, num_classes=hp.num_classes
        )
        self.gen = feature_generator(
            size, feature_dim=hp.feature_dim, filters=hp.filters, norm=hp.norm, name="gen"
        )
        self.disc = dtn_discriminator(size, filters=hp.filters, norm=hp.norm, name="disc")

    # -- the f phase (PretrainPhase) --------------------------------------------------------
    def pretrain_network(self):
        return self.f_net

    def main_players(self):
        return {"gen": [self.gen], "disc": [self.disc]}

    def _disc_term_names(self):
        hp = self.hp
        names = ["disc_3way"] if hp.gan_loss == "vanilla" else ["disc_src", "disc_tgt"]
        if hp.gradient_penalty > 0:
            names += ["gp_b"] if hp.gan_loss == "vanilla" else ["gp_src", "gp_tgt"]
        return names

    def main_log_names(self):
        return ["gen_loss", "adv", "f_const", "tid", "tv", "disc_loss"] + self._disc_term_names()

    # -- training -------------------------------------------------------------------------
    def _realness(self, x, training=True):
        return losses.realness(self.disc(x, training=training))

    def main_step(self, batch):
        x_a, x_b = batch["x_a"], batch["x_b"]
        hp = self.hp
        f_a = self.f_net(x_a, training=False)["features"]
        f_b = self.f_net(x_b, training=False)["features"]
        with tf.GradientTape() as tape:
            x_ab = self.gen(f_a, training=True)
            x_bb = self.gen(f_b, training=True)
            if hp.gan_loss == "vanilla":
                adv = losses.three_way_generator(
                    self.disc(x_ab, training=True), self.disc(x_bb, training=True)
                )
            else:
                adv = self.gan.generator(self._realness(x_ab)) + self.gan.generator(
                    self._realness(x_bb)
                )
            terms = {
                "adv": (1.0, adv),
                "f_const": (
                    hp.lambda_const,
                    losses.f_constancy(f_a, self.f_net(x_ab, training=False)["features"]),
                ),
                "tid": (hp.lambda_tid, losses.target_identity(x_b, x_bb)),
                "tv": (hp.lambda_tv, losses.total_variation(x_ab)),
            }
            gen_loss, logs = self.weighted_loss("gen_loss", terms)
        self.step("gen", tape, gen_loss)

        fake_src, fake_tgt = tf.stop_gradient(x_ab), tf.stop_gradient(x_bb)
        with tf.GradientTape() as tape:
            if hp.gan_loss == "vanilla":
                d3 = losses.three_way_discriminator(
                    self.disc(fake_src, training=True),
                    self.disc(fake_tgt, training=True),
                    self.disc(x_b, training=True),
                )
                terms = {"disc_3way": (1.0, d3)}
                if hp.gradient_penalty > 0:
                    penalty = losses.gradient_penalty(self._realness, x_b, fake_src)
                    terms["gp_b"] = (hp.gradient_penalty, penalty)
            else:
                terms = {
                    **self.adversarial_terms("src", self._realness, x_b, fake_src),
                    **self.adversarial_terms("tgt", self._realness, x_b, fake_tgt),
                }
            disc_loss, disc_logs = self.weighted_loss("disc_loss", terms)
        self.step("disc", tape, disc_loss)
        return {**logs, **disc_logs}

    def train_step(self, batch):
        return self.phased_step(batch)

    # -- inference ------------------------------------------------------------------------
    def translation_paths(self):
        size = self.image_size
        image = keras.Input((size, size, 3), name="image")
        out = self.gen(self.f_net(image)["features"])
        out = keras.layers.Activation("linear", dtype="float32", name="translated")(out)
        d = self.config.data
        model = keras.Model(image, out, name="a2b")
        return {"a2b": image_path(model, d.domain_a, d.domain_b, "G = g(f(x)), f frozen")}

    def sample_images(self, batch):
        x_a, x_b = batch["x_a"], batch["x_b"]
        f = self.f_net
        return {
            "a2b": [x_a, self.gen(f(x_a, training=False)["features"], training=False)],
            "b2b": [x_b, self.gen(f(x_b, training=False)["features"], training=False)],
        }
