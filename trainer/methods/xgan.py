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
  PatchGAN discriminators of A and B;
- ``lambda_teacher`` (optional, as in the paper; 0 = off, the default): the teacher loss
  ``teach`` = L1(p(e_a(x_a)), T(x_a)), pulling the A embedding towards a fixed pretrained
  embedding T(x_a).

Where we chose: the weights default to 1 (the paper tunes them per dataset); the semantic
consistency distance is L1 (the paper writes a norm without naming it) and its gradient
reaches both encoders and the decoder; the embedding is a spatial map rather than a vector,
so the same path converts to every export format.

The teacher T is a digit classifier (``networks.feature_classifier``, DTN's f) whose features
(its penultimate dense layer, ``--teacher_dim`` wide) are the target. It is its own network,
not an evaluation judge: it learns the SOURCE domain's labels alone during the first
``--teacher_steps`` steps and is frozen from then on, DTN's f phase
(``trainer.methods.pretrain.PretrainPhase``: the phase survives a checkpoint, the logs carry
``teacher_phase``, ``teacher_loss`` and ``teacher_acc``, a run with a phase trains on one
replica; ``--teacher_steps=0`` keeps a random frozen teacher, an ablation). The embedding is a
spatial map and T's features a vector, so a linear projection p (``teacher_proj``, flattened
embedding -> ``--teacher_dim``, trained with the encoders) maps one onto the other; the
distance is L1, as for semantic consistency. With ``--lambda_teacher=0`` neither T nor p is
built: the variables, checkpoint, logs and batches (no source labels) are those of XGAN
without a teacher, and a run is not resumed across that switch.
"""

import tensorflow as tf

from trainer import losses
from trainer.layers import GradientReversal
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.hparams import NORMS
from trainer.methods.pretrain import PretrainPhase
from trainer.methods.two_way import EncoderDecoderPaths
from trainer.networks import (
    feature_classifier,
    feature_projection,
    latent_discriminator,
    latent_shape,
    patch_discriminator,
    unit_decoders,
    unit_encoders,
)

DOMAIN_ADVERSARIAL = ("grl", "disc")


class XGAN(PretrainPhase, EncoderDecoderPaths, TranslationModel):
    DATA = "unpaired"
    CAPABILITIES = frozenset()
    PHASE_PLAYER, PHASE_STEPS, PHASE_REST = "teacher", "teacher_steps", "the XGAN networks"
    HPARAMS = {
        "lambda_rec": HParam(1.0, "Weight of the L1 reconstruction, per domain."),
        "lambda_dann": HParam(1.0, "Weight of the domain-adversarial loss on the embedding."),
        "lambda_sem": HParam(1.0, "Weight of the semantic consistency L1, per direction."),
        "lambda_gan": HParam(1.0, "Weight of the GAN loss on the translations, per direction."),
        "lambda_teacher": HParam(
            0.0,
            "Weight of the teacher loss: L1 between the A embedding (projected to the "
            "teacher's feature width) and the features of a digit classifier trained on the "
            "source labels, then frozen. 0 = off: no teacher is built.",
        ),
        "teacher_steps": HParam(
            500,
            "With --lambda_teacher > 0: first training steps that train the teacher alone on "
            "the source labels; then it is frozen and the XGAN networks train (0 = a random "
            "frozen teacher, an ablation).",
        ),
        "teacher_dim": HParam(
            128, "With --lambda_teacher > 0: width of the teacher's feature vector.", shape=True
        ),
        "teacher_classes": HParam(
            10,
            "With --lambda_teacher > 0: classes of the source labels the teacher learns.",
            shape=True,
        ),
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
        # The teacher on (random and frozen) so that the tiny runs hold its networks too.
        "lambda_teacher": 1.0,
        "teacher_steps": 0,
        "teacher_dim": 8,
    }

    @classmethod
    def network_switches(cls, hparams):
        return {
            **super().network_switches(hparams),
            "lambda_teacher > 0": hparams.get("lambda_teacher", 0.0) > 0,
        }

    @classmethod
    def reads_source_labels(cls, hparams):
        return hparams.get("lambda_teacher", 0.0) > 0

    @classmethod
    def validate_config(cls, config):
        super().validate_config(config)
        hp = config.hparams
        if hp.lambda_teacher > 0:
            cls.validate_phase(config)
            for key in ("teacher_dim", "teacher_classes"):
                if hp[key] < 1:
                    raise ValueError(f"--{key} must be >= 1, got {hp[key]}.")

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
        self.teacher = self.teacher_proj = None
        if hp.lambda_teacher > 0:
            self.teacher = feature_classifier(
                size, hp.filters, hp.teacher_dim, hp.teacher_classes, name="teacher"
            )
            self.teacher_proj = feature_projection(shape, hp.teacher_dim, name="teacher_proj")

    # -- the teacher phase (PretrainPhase) ----------------------------------------------------
    def pretrain_network(self):
        return self.teacher

    def main_players(self):
        gen = [self.enc_a, self.enc_b, self.dec_a, self.dec_b]
        if self.teacher_proj is not None:
            gen.append(self.teacher_proj)
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

    def main_log_names(self):
        hp = self.hp
        gp = hp.gradient_penalty > 0
        gen = ["gen_loss", "rec_a", "rec_b", "dann", "sem_ab", "sem_ba", "adv_ab", "adv_ba"]
        critics = "abz" if hp.domain_adversarial == "disc" else "ab"
        disc = [f"{k}_{c}" for c in critics for k in ("disc", "gp")[: 1 + gp]]
        return [*gen, "teach", "disc_loss", *disc]

    def teacher_term(self, x_a, e_a):
        """{"teach": (weight, L1(p(e_a), T(x_a)))}, or {} without a teacher."""
        if self.teacher is None:
            return {}
        target = tf.stop_gradient(self.teacher(x_a, training=False)["features"])
        projected = self.teacher_proj(e_a, training=True)
        return {"teach": (self.hp.lambda_teacher, losses.l1(projected, target))}

    def train_step(self, batch):
        if self.teacher is None:
            return self.main_step(batch)
        return self.phased_step(batch)

    def main_step(self, batch):
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
                **self.teacher_term(x_a, e_a),
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
