"""UNMT-style shared latent (Lample et al., arXiv 1711.00043), on images instead of sentences.

One encoder maps both domains into one code z; a decoder per domain maps z back to its images.
Objective (the paper's three terms, weights by name, each 1 by default as in the paper):

- ``lambda_auto``: denoising auto-encoding, L1(dec_a(enc(C(x_a))), x_a) and the same for B.
  C is the corruption: pixel dropout (``--pixel_dropout``, whole pixels set to 0, the middle
  of [-1, 1]; the image analogue of the paper's word dropout) then additive Gaussian noise
  (``--noise_stddev``; in place of its local word shuffle). 0 switches either off.
- ``lambda_cd``: cross-domain training (back-translation), L1(dec_a(enc(C(y))), x_a) with
  y = dec_b(enc(x_a)) computed by a frozen copy of encoder and decoders, and the same for B.
- ``lambda_adv``: a discriminator tells the domain from the code; the encoder is trained to
  fool it with flipped labels (A codes should read as B and B codes as A), in the
  ``--gan_loss`` vocabulary (vanilla = the paper's cross-entropy).

The frozen copy (``frozen_enc``, ``frozen_dec_a``, ``frozen_dec_b``) is refreshed from the live
weights at the start of every step whose number is a multiple of ``--backtranslate_every``
(1 = every step: the previous step's model, as the paper's M^(t-1)). It is checkpointed
(``checkpoint_items``), so a run resumed between two refreshes translates with the same copy
it would have used without the restart. The step count is the generator optimizer's.

Where the paper is silent or does not apply to images: the first frozen copy is the model's
own initial weights (the paper starts from a word-by-word translation, which images lack);
the discriminator reads a map of codes (a logit per latent position) and judges the codes of
the corrupted inputs the auto-encoder already computes; reconstruction is L1 instead of
cross-entropy over words; a decoder per domain instead of one decoder with a language token.
"""

import tensorflow as tf

from trainer import losses
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.hparams import GAN_LOSSES, NORMS
from trainer.methods.optim import tf_variable
from trainer.methods.two_way import EncoderDecoderPaths
from trainer.networks import image_decoder, image_encoder, latent_discriminator, latent_shape


def corrupt(x, pixel_dropout, noise_stddev):
    """C(x): each pixel (all its channels) zeroed with probability ``pixel_dropout``, then
    N(0, noise_stddev^2) added per value; the result is clipped to [-1, 1]."""
    x = tf.convert_to_tensor(x, tf.float32)
    if pixel_dropout > 0:
        shape = tf.concat([tf.shape(x)[:-1], [1]], axis=0)
        keep = tf.random.uniform(shape) >= pixel_dropout
        x = x * tf.cast(keep, x.dtype)
    if noise_stddev > 0:
        x = tf.clip_by_value(x + tf.random.normal(tf.shape(x), stddev=noise_stddev), -1.0, 1.0)
    return x


class UNMT(EncoderDecoderPaths, TranslationModel):
    DATA = "unpaired"
    CAPABILITIES = frozenset()
    HPARAMS = {
        "lr": HParam(3e-4, "Adam learning rate of every player (the paper's 0.0003)."),
        "gan_loss": HParam(
            "vanilla",
            "Loss of the latent discriminator: vanilla (the paper's cross-entropy), lsgan, "
            "hinge or wgan (wgan needs --gradient_penalty or --clip_weights).",
            choices=GAN_LOSSES,
        ),
        "lambda_auto": HParam(1.0, "Weight of the denoising auto-encoding L1, per domain."),
        "lambda_cd": HParam(
            1.0, "Weight of the cross-domain (back-translation) L1, per direction."
        ),
        "lambda_adv": HParam(
            1.0, "Weight of the encoder's loss for fooling the latent discriminator."
        ),
        "pixel_dropout": HParam(
            0.1, "Corruption: probability that a pixel is zeroed (0 = off; the paper's p_wd)."
        ),
        "noise_stddev": HParam(
            0.1, "Corruption: stddev of the Gaussian noise added to every value (0 = off)."
        ),
        "backtranslate_every": HParam(
            1, "Refresh the frozen copy that makes the back-translations every N steps."
        ),
        "n_down": HParam(
            2, "Stride-2 downsamplings of the encoder (upsamplings of each decoder).", shape=True
        ),
        "enc_blocks": HParam(3, "Residual blocks of the shared encoder.", shape=True),
        "dec_blocks": HParam(3, "Residual blocks of each decoder.", shape=True),
        "disc_layers": HParam(2, "3x3 layers of the latent discriminator.", shape=True),
        "norm": HParam(
            "instance",
            "Normalization in encoder and decoders: instance, batch, layer or none.",
            shape=True,
            choices=NORMS,
        ),
    }
    SMOKE_HPARAMS = {"filters": 4, "enc_blocks": 1, "dec_blocks": 1, "disc_layers": 1}

    @classmethod
    def validate_config(cls, config):
        super().validate_config(config)
        hp = config.hparams
        if hp.backtranslate_every < 1:
            raise ValueError(
                f"--backtranslate_every must be >= 1 (1 = refresh the frozen copy every "
                f"step), got {hp.backtranslate_every}."
            )
        if not 0 <= hp.pixel_dropout < 1:
            raise ValueError(
                f"--pixel_dropout is a probability in [0, 1) (0 = off), got {hp.pixel_dropout}."
            )
        if hp.noise_stddev < 0:
            raise ValueError(f"--noise_stddev must be >= 0 (0 = off), got {hp.noise_stddev}.")

    def build_networks(self):
        hp, size = self.hp, self.image_size
        common = dict(filters=hp.filters, n_down=hp.n_down, norm=hp.norm)
        enc = dict(n_blocks=hp.enc_blocks, **common)
        dec = dict(n_blocks=hp.dec_blocks, **common)
        self.enc = image_encoder(size, **enc, name="enc")
        self.dec_a = image_decoder(size, **dec, name="dec_a")
        self.dec_b = image_decoder(size, **dec, name="dec_b")
        shape = latent_shape(size, hp.filters, hp.n_down)
        self.disc_z = latent_discriminator(shape, shape[-1], hp.disc_layers, name="disc_z")
        # The frozen copy starts as the live weights; train_step refreshes it on schedule.
        self.frozen_enc = image_encoder(size, **enc, name="frozen_enc")
        self.frozen_dec_a = image_decoder(size, **dec, name="frozen_dec_a")
        self.frozen_dec_b = image_decoder(size, **dec, name="frozen_dec_b")
        for live, frozen in self._live_and_frozen():
            frozen.set_weights(live.get_weights())

    def _live_and_frozen(self):
        return (
            (self.enc, self.frozen_enc),
            (self.dec_a, self.frozen_dec_a),
            (self.dec_b, self.frozen_dec_b),
        )

    def players(self):
        return {"gen": [self.enc, self.dec_a, self.dec_b], "disc": [self.disc_z]}

    def checkpoint_items(self):
        return {"frozen_" + live.name: frozen for live, frozen in self._live_and_frozen()}

    def refresh_frozen_copy(self):
        """Copies the live weights into the frozen copy if this step (the generator
        optimizer's update count) is a multiple of --backtranslate_every."""
        iterations = self.optimizers["gen"].iterations
        pairs = [
            (tf_variable(live_v), tf_variable(frozen_v))
            for live, frozen in self._live_and_frozen()
            for live_v, frozen_v in zip(live.variables, frozen.variables, strict=True)
        ]

        def refresh(strategy):
            due = tf.equal(
                tf.math.floormod(tf.cast(iterations, tf.int64), self.hp.backtranslate_every), 0
            )
            for live_v, frozen_v in pairs:
                strategy.extended.update(
                    frozen_v, lambda var, live_v=live_v: var.assign(tf.where(due, live_v, var))
                )

        # Assignments to mirrored variables happen in cross-replica context (as clip_weights).
        context = tf.distribute.get_replica_context()
        if context is None:
            refresh(tf.distribute.get_strategy())
        else:
            context.merge_call(refresh)

    def train_step(self, batch):
        x_a, x_b = batch["x_a"], batch["x_b"]
        hp = self.hp
        self.refresh_frozen_copy()
        # Back-translations by the frozen copy: fixed targets, no gradient.
        y_ab = self.frozen_dec_b(self.frozen_enc(x_a, training=False), training=False)
        y_ba = self.frozen_dec_a(self.frozen_enc(x_b, training=False), training=False)
        y_ab, y_ba = tf.stop_gradient(y_ab), tf.stop_gradient(y_ba)

        def noisy(x):
            return corrupt(x, hp.pixel_dropout, hp.noise_stddev)

        with tf.GradientTape() as tape:
            z_a = self.enc(noisy(x_a), training=True)
            z_b = self.enc(noisy(x_b), training=True)
            x_aa = self.dec_a(z_a, training=True)
            x_bb = self.dec_b(z_b, training=True)
            x_aba = self.dec_a(self.enc(noisy(y_ab), training=True), training=True)
            x_bab = self.dec_b(self.enc(noisy(y_ba), training=True), training=True)
            # Flipped labels: A codes should read as B codes and B codes as A codes.
            fool = self.gan.discriminator(
                self.disc_z(z_b, training=True), self.disc_z(z_a, training=True)
            )
            terms = {
                "auto_a": (hp.lambda_auto, losses.l1(x_aa, x_a)),
                "auto_b": (hp.lambda_auto, losses.l1(x_bb, x_b)),
                "cd_a": (hp.lambda_cd, losses.l1(x_aba, x_a)),
                "cd_b": (hp.lambda_cd, losses.l1(x_bab, x_b)),
                "adv_z": (hp.lambda_adv, fool),
            }
            gen_loss, logs = self.weighted_loss("gen_loss", terms)
        self.step("gen", tape, gen_loss)

        z_a, z_b = tf.stop_gradient(z_a), tf.stop_gradient(z_b)
        with tf.GradientTape() as tape:
            terms = self.adversarial_terms("z", self.disc_z, z_a, z_b)
            disc_loss, disc_logs = self.weighted_loss("disc_loss", terms)
        self.step("disc", tape, disc_loss)
        return {**logs, **disc_logs}

    # -- inference: paths and sample rows from EncoderDecoderPaths (two_way.py) ---------------
    PATH_DESCRIPTIONS = ("shared encoder -> decoder B", "shared encoder -> decoder A")

    @property
    def enc_a(self):
        return self.enc  # one encoder for both domains

    @property
    def enc_b(self):
        return self.enc
