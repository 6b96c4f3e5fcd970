"""Latent-space exploration (arXiv 1805.10130): translation as a GAN between two VAE latents.

Two phases in one run, decided by the step counter (the VAE optimizer's update count, held in
the checkpoint with everything else, so a run resumes in the phase it stopped in):

1. Steps [0, --vae_steps): a VAE per domain, f_1/g_1 on A and f_2/g_2 on B, each with a
   learned posterior (the encoder gives mean and log-variance). Loss per domain:
   lambda_recon * |g(mu) - x| (pixel reconstruction of the posterior mean) +
   lambda_elbo * -ELBO (``losses.negative_elbo``: squared error of a decoded posterior sample
   plus the KL to N(0, I), per pixel).
2. Steps [--vae_steps, --train_steps): the VAEs are frozen and codes are their posterior
   means z_1 = f_1(x_a), z_2 = f_2(x_b). A latent generator G_ab(z_1, eps) -> z_2 with
   eps ~ N(0, I) (and its reverse G_ba) plays against a pair discriminator D_ab(z_1, z_2)
   (and D_ba) trained on three kinds of pairs (``losses.pair_discriminator_loss``): real
   matched pairs (z_1 of a class-i image of A, z_2 of a class-map(i) image of B; c = 1),
   generated pairs (z_1, G_ab(z_1, eps)) (c = 0) and noise pairs (z_1, eps) (c = 0). G's loss:
   lambda_gan * adversarial + lambda_reg * (1 / n) * ||eps - G(eps, z)||^2, n the code size
   (the regulariser as the issue states it: G fed the noise in its code slot and the code in
   its noise slot; the paper's text was not available to check it against).

Labels used in training: the class labels of BOTH domains' training images (data kind
``unpaired_labeled``), and only to form the real matched pairs through ``--class_map`` (the
paper's class-correspondence setting). Within a batch each A image is matched to a random B
image of class class_map(y_a); an A image with no such partner in the batch is left out of the
discriminator's loss for that step (the ``matched`` log is the fraction kept). Evaluation's
judges are never used in training.

Choices where the paper is silent or departed from: codes are the posterior means (phase 2
and export), the adversarial loss is ``--gan_loss`` (vanilla by default, the c = 1 / c = 0
cross-entropy), each learning-rate schedule spans its own phase, and the reverse direction
(G_ba, D_ba) reuses the same matched pairs swapped. The phase switch is a ``tf.cond`` in the
compiled step, which tf.distribute cannot run across replicas: one replica only
(``--strategy=default`` or ``one_device``; others are refused).

Paths: ``a2b`` = f_1 -> G_ab -> g_2 and ``b2a`` = f_2 -> G_ba -> g_1, each with the image and
``eps`` (a declared ``noise`` input with prior N(0, 1)); each declares its class map.
"""

import keras
import numpy as np
import tensorflow as tf

from trainer import losses
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.hparams import GAN_LOSSES
from trainer.methods.optim import LinearDecay, make_optimizer, unique_variables
from trainer.methods.paths import Image, Noise, Path, normal
from trainer.networks import latent_generator, pair_discriminator, vae_decoder, vae_encoder

NUM_CLASSES = 10
# Class-split pairs of the embedded digit domains: class i of the source is class i + offset
# of the target (the paper's 0-4 -> 5-9 correspondence).
CLASS_SPLIT_OFFSETS = {("mnist_0_4", "mnist_5_9"): 5, ("mnist_5_9", "mnist_0_4"): -5}
PHASES = ("vae", "latent_gan")
# The phase switch (a tf.cond around each phase's updates) cannot hold a cross-replica update.
SINGLE_REPLICA_STRATEGIES = ("default", "one_device")


def default_class_map(domain_a, domain_b):
    """{i: i + offset} on a class-split pair (mnist_0_4 -> mnist_5_9: i -> i + 5), else i -> i."""
    offset = CLASS_SPLIT_OFFSETS.get((domain_a, domain_b), 0)
    return {i: i + offset for i in range(NUM_CLASSES) if 0 <= i + offset < NUM_CLASSES}


def parse_class_map(text, domain_a, domain_b):
    """``--class_map`` ("0:5,1:6,...", empty = ``default_class_map``) -> {source: target}.

    ValueError naming the fix for a malformed entry, a label outside [0, 9], or a label used
    twice on either side (the map must be one-to-one: b2a uses its inverse).
    """
    text = (text or "").strip()
    if not text:
        return default_class_map(domain_a, domain_b)
    example = "e.g. --class_map=0:5,1:6,2:7,3:8,4:9"
    mapping = {}
    for entry in text.split(","):
        source, sep, target = entry.strip().partition(":")
        try:
            source, target = int(source), int(target)
        except ValueError:
            source = None
        if not sep or source is None:
            raise ValueError(
                f"--class_map={text!r}: {entry.strip()!r} is not SOURCE:TARGET with two class "
                f"ids; {example}."
            ) from None
        if not (0 <= source < NUM_CLASSES and 0 <= target < NUM_CLASSES):
            raise ValueError(
                f"--class_map={text!r}: {entry.strip()!r} names a class outside 0-"
                f"{NUM_CLASSES - 1}; {example}."
            )
        if source in mapping:
            raise ValueError(f"--class_map={text!r}: source class {source} is mapped twice.")
        if target in mapping.values():
            raise ValueError(
                f"--class_map={text!r}: target class {target} is the image of two source "
                "classes; the map must be one-to-one (b2a translates by its inverse)."
            )
        mapping[source] = target
    return mapping


def label_table(mapping):
    """[NUM_CLASSES] int64: entry i is mapping[i], -1 where i is not mapped."""
    return tf.constant([mapping.get(i, -1) for i in range(NUM_CLASSES)], tf.int64)


def match_partners(y_src, y_dst, table, seed=None):
    """For each source example, a random index j of the batch with y_dst[j] = table[y_src],
    and whether one exists: ``(j int64 [B], matched float32 [B])``. Unknown (-1) or unmapped
    source labels match nothing."""
    y_src = tf.cast(y_src, tf.int64)
    y_dst = tf.cast(y_dst, tf.int64)
    known = (y_src >= 0) & (y_src < NUM_CLASSES)
    want = tf.where(known, tf.gather(table, tf.clip_by_value(y_src, 0, NUM_CLASSES - 1)), -1)
    same = tf.equal(want[:, None], y_dst[None, :]) & (want[:, None] >= 0)
    shape = tf.shape(same)
    noise = tf.random.uniform(shape) if seed is None else tf.random.stateless_uniform(shape, seed)
    j = tf.argmax(tf.where(same, noise, -tf.ones_like(noise)), axis=1)
    return j, tf.cast(tf.reduce_any(same, axis=1), tf.float32)


class LatentExplore(TranslationModel):
    DATA = "unpaired_labeled"
    CAPABILITIES = frozenset({"noise_prior"})
    PRIOR = normal(0.0, 1.0)
    HPARAMS = {
        "filters": HParam(32, "Width of the first VAE encoder layer.", shape=True),
        "n_down": HParam(
            2, "Stride-2 convolutions of the VAE encoders (upsamplings of decoders).", shape=True
        ),
        "latent_dim": HParam(
            16, "Size of each VAE's code z (and of the noise eps of G).", shape=True
        ),
        "latent_units": HParam(
            128, "Units of each dense layer of G and the pair discriminators.", shape=True
        ),
        "latent_layers": HParam(
            2, "Hidden dense layers of G and the pair discriminators.", shape=True
        ),
        "vae_steps": HParam(
            1000,
            "Training steps of phase 1 (the VAEs); from this step to --train_steps the VAEs "
            "are frozen and the latent GAN trains.",
        ),
        "lambda_recon": HParam(1.0, "lambda_1: weight of the VAEs' pixel L1 reconstruction."),
        "lambda_elbo": HParam(1.0, "lambda_2: weight of the VAEs' negative ELBO (per pixel)."),
        "lambda_gan": HParam(1.0, "Weight of G's adversarial loss on generated pairs."),
        "lambda_reg": HParam(
            1.0, "lambda_reg: weight of G's noise regulariser (1/n) ||eps - G(eps, z)||^2."
        ),
        "class_map": HParam(
            "",
            "Class correspondence SOURCE:TARGET,... forming the real pairs of the pair "
            "discriminator; empty = i -> i + 5 on mnist_0_4 -> mnist_5_9, i -> i otherwise.",
        ),
        "gan_loss": HParam(
            "vanilla",
            "Adversarial loss of the pair discriminators: vanilla (the paper's c = 1 / c = 0 "
            "cross-entropy), lsgan, hinge or wgan (wgan needs --gradient_penalty or "
            "--clip_weights).",
            choices=GAN_LOSSES,
        ),
    }
    SMOKE_HPARAMS = {
        "filters": 4,
        "latent_dim": 4,
        "latent_units": 8,
        "latent_layers": 1,
        "vae_steps": 1,
    }

    @classmethod
    def validate_config(cls, config):
        super().validate_config(config)
        hp, d = config.hparams, config.data
        parse_class_map(hp.class_map, d.domain_a, d.domain_b)
        steps = config.train.train_steps
        if not 1 <= hp.vae_steps < steps:
            raise ValueError(
                f"--vae_steps={hp.vae_steps} with --train_steps={steps}: the VAEs train for "
                "--vae_steps and the latent GAN for the rest, so use 1 <= --vae_steps < "
                "--train_steps."
            )
        if config.train.strategy not in SINGLE_REPLICA_STRATEGIES:
            raise ValueError(
                f"--strategy={config.train.strategy}: latent_explore switches phase inside the "
                "compiled training step, and tf.distribute cannot apply updates under that "
                "switch across replicas; use --strategy=default or one_device."
            )
        for key in ("latent_dim", "latent_units", "latent_layers"):
            if hp[key] < 1:
                raise ValueError(f"--{key} must be >= 1, got {hp[key]}.")

    def build_networks(self):
        hp, size = self.hp, self.image_size
        d = self.config.data
        self.class_map = parse_class_map(hp.class_map, d.domain_a, d.domain_b)
        self._table = label_table(self.class_map)
        vae = dict(latent_dim=hp.latent_dim, filters=hp.filters, n_down=hp.n_down)
        self.enc_a = vae_encoder(size, name="enc_a", **vae)
        self.enc_b = vae_encoder(size, name="enc_b", **vae)
        self.dec_a = vae_decoder(size, name="dec_a", **vae)
        self.dec_b = vae_decoder(size, name="dec_b", **vae)
        mlp = dict(latent_dim=hp.latent_dim, units=hp.latent_units, layers=hp.latent_layers)
        self.gen_ab = latent_generator(name="gen_ab", **mlp)
        self.gen_ba = latent_generator(name="gen_ba", **mlp)
        self.disc_ab = pair_discriminator(name="disc_ab", **mlp)
        self.disc_ba = pair_discriminator(name="disc_ba", **mlp)

    def players(self):
        return {
            "vae": [self.enc_a, self.dec_a, self.enc_b, self.dec_b],
            "gen": [self.gen_ab, self.gen_ba],
            "disc": [self.disc_ab, self.disc_ba],
        }

    # -- phases ------------------------------------------------------------------------------
    def phase_players(self):
        return {"vae": ("vae",), "latent_gan": ("gen", "disc")}

    def in_latent_phase(self):
        """Bool tensor: whether the next step is phase 2 (the VAEs have made --vae_steps
        updates)."""
        if "vae" not in self.optimizers:
            return tf.constant(False)
        return tf.greater_equal(
            tf.convert_to_tensor(self.optimizers["vae"].iterations), self.hp.vae_steps
        )

    def phase(self):
        """The phase the next step trains (eagerly): "vae" or "latent_gan"."""
        return PHASES[int(bool(self.in_latent_phase()))]

    def active_players(self):
        players = self.players()
        return {name: players[name] for name in self.phase_players()[self.phase()]}

    def make_optimizers(self, total_steps):
        """As the base's, but each player's schedule spans its own phase: the VAEs' the first
        --vae_steps steps, G's and D's the rest (a -1 --decay_start_step is half of each)."""
        hp = self.hp
        spans = {"vae": hp.vae_steps, "gen": total_steps - hp.vae_steps}
        spans["disc"] = spans["gen"]
        for name, networks in self.players().items():
            span = max(int(spans[name]), 1)
            start = span // 2 if hp.decay_start_step < 0 else hp.decay_start_step
            opt = make_optimizer(self.OPTIMIZER, LinearDecay(hp.lr, start, span), hp, name)
            if self.config.train.mixed_precision:
                opt = keras.optimizers.LossScaleOptimizer(opt, name=f"{name}_loss_scale")
            opt.build(unique_variables(networks))
            self.optimizers[name] = opt
        self.built = True
        return self.optimizers

    # -- training ----------------------------------------------------------------------------
    def log_names(self):
        """Every name a step logs, in either phase (both branches of the phase switch return
        the same structure; the other phase's entries are 0)."""
        names = ["phase", "vae_loss", "recon_a", "elbo_a", "recon_b", "elbo_b"]
        names += ["gen_loss", "adv_ab", "reg_ab", "adv_ba", "reg_ba", "disc_loss"]
        names += ["disc_ab", "disc_ba", "matched"]
        if self.hp.gradient_penalty > 0:
            names += ["gp_ab", "gp_ba"]
        return names

    def _complete(self, logs):
        return {k: tf.cast(logs.get(k, 0.0), tf.float32) for k in self.log_names()}

    def train_step(self, batch):
        return tf.cond(
            self.in_latent_phase(),
            lambda: self._complete(self.latent_gan_step(batch)),
            lambda: self._complete(self.vae_step(batch)),
        )

    def vae_step(self, batch):
        """Phase 1: lambda_recon * pixel L1 of g(mu) + lambda_elbo * -ELBO, per domain."""
        hp = self.hp
        with tf.GradientTape() as tape:
            terms = {}
            for d, enc, dec in (("a", self.enc_a, self.dec_a), ("b", self.enc_b, self.dec_b)):
                x = batch[f"x_{d}"]
                mu, log_var = enc(x, training=True)
                z = losses.gaussian_sample(mu, log_var)
                terms[f"recon_{d}"] = (hp.lambda_recon, losses.l1(dec(mu, training=True), x))
                terms[f"elbo_{d}"] = (
                    hp.lambda_elbo,
                    losses.negative_elbo(x, dec(z, training=True), mu, log_var),
                )
            loss, logs = self.weighted_loss("vae_loss", terms)
        self.step("vae", tape, loss)
        return {"phase": self.replica_share(tf.constant(1.0)), **logs}

    def codes(self, x, encoder):
        """The frozen VAE's posterior mean of ``x`` (phase 2's codes)."""
        return tf.stop_gradient(encoder(x, training=False)[0])

    def latent_gan_step(self, batch):
        """Phase 2: G_ab, G_ba against the pair discriminators; the VAEs are frozen."""
        hp = self.hp
        z_a = self.codes(batch["x_a"], self.enc_a)
        z_b = self.codes(batch["x_b"], self.enc_b)
        partner, matched = match_partners(batch["y_a"], batch["y_b"], self._table)
        partner_b = tf.gather(z_b, partner)
        eps_ab = tf.random.normal(tf.shape(z_a))
        eps_ba = tf.random.normal(tf.shape(z_b))
        # (source code, real partner, source's noise, generator, discriminator) per direction;
        # b2a's real pairs are a2b's matched pairs swapped.
        directions = {
            "ab": (z_a, partner_b, eps_ab, self.gen_ab, self.disc_ab, matched),
            "ba": (partner_b, z_a, eps_ba, self.gen_ba, self.disc_ba, matched),
        }
        with tf.GradientTape() as tape:
            terms, fakes = {}, {}
            for key, (z, _, eps, gen, disc, _) in directions.items():
                fake = gen([z, eps], training=True)
                fakes[key] = tf.stop_gradient(fake)
                logits = disc(tf.concat([z, fake], -1), training=True)
                terms[f"adv_{key}"] = (hp.lambda_gan, self.gan.generator(logits))
                swapped = gen([eps, z], training=True)
                terms[f"reg_{key}"] = (hp.lambda_reg, losses.noise_regulariser(eps, swapped))
            gen_loss, logs = self.weighted_loss("gen_loss", terms)
        self.step("gen", tape, gen_loss)

        with tf.GradientTape() as tape:
            terms = {}
            for key, (z, partner_z, eps, _, disc, weight) in directions.items():
                real = tf.concat([z, partner_z], -1)
                fake = tf.concat([z, fakes[key]], -1)
                noise = tf.concat([z, eps], -1)
                loss = losses.pair_discriminator_loss(
                    self.gan.discriminator,
                    disc(real, training=True),
                    disc(fake, training=True),
                    disc(noise, training=True),
                    weight,
                )
                terms[f"disc_{key}"] = (1.0, loss)
                if hp.gradient_penalty > 0:
                    penalty = losses.gradient_penalty(disc, real, fake)
                    terms[f"gp_{key}"] = (hp.gradient_penalty, penalty)
            disc_loss, disc_logs = self.weighted_loss("disc_loss", terms)
        self.step("disc", tape, disc_loss)
        phase = self.replica_share(tf.constant(2.0))
        return {"phase": phase, **logs, **disc_logs, "matched": self.mean(matched)}

    # -- inference ---------------------------------------------------------------------------
    def _explore(self, enc, gen, dec, name):
        image = keras.Input((self.image_size, self.image_size, 3), name="image")
        eps = keras.Input((self.hp.latent_dim,), name="eps")
        out = dec(gen([enc(image)[0], eps]))
        out = keras.layers.Activation("linear", dtype="float32", name="translated")(out)
        return keras.Model([image, eps], out, name=name)

    def translation_paths(self):
        d = self.config.data
        inverse = {t: s for s, t in self.class_map.items()}
        out = {}
        for name, parts, src, dst, mapping, text in (
            ("a2b", (self.enc_a, self.gen_ab, self.dec_b), d.domain_a, d.domain_b,
             self.class_map, "f_1 -> G_ab(z, eps) -> g_2 on the posterior mean"),
            ("b2a", (self.enc_b, self.gen_ba, self.dec_a), d.domain_b, d.domain_a,
             inverse, "f_2 -> G_ba(z, eps) -> g_1 on the posterior mean"),
        ):  # fmt: skip
            out[name] = Path(
                model=self._explore(*parts, name),
                inputs=(Image("image"), Noise("eps", self.PRIOR)),
                outputs=(Image("translated"),),
                source_domain=src,
                target_domain=dst,
                description=text,
                extra={"class_map": [[s, t] for s, t in sorted(mapping.items())]},
            )
        return out

    def translate(self, x, direction, seed=0):
        """Translates a batch in [-1, 1] along ``a2b`` / ``b2a`` with eps drawn from its prior
        N(0, 1) (seeded: evaluation is repeatable)."""
        if direction not in ("a2b", "b2a"):
            raise ValueError(f"{self.config.method} has no path {direction!r}; it has a2b, b2a.")
        if not hasattr(self, "_path_cache"):
            self._path_cache = self.translation_paths()
        x = tf.convert_to_tensor(x, tf.float32)
        n = int(x.shape[0])
        eps = np.random.default_rng(seed).standard_normal((n, self.hp.latent_dim))
        return self._path_cache[direction].model([x, tf.constant(eps, tf.float32)])

    def sample_images(self, batch):
        x_a, x_b = batch["x_a"], batch["x_b"]
        z_a = self.enc_a(x_a, training=False)[0]
        z_b = self.enc_b(x_b, training=False)[0]
        rows = {}
        for key, x, z, gen, dec in (
            ("a2b", x_a, z_a, self.gen_ab, self.dec_b),
            ("b2a", x_b, z_b, self.gen_ba, self.dec_a),
        ):
            outs = [x]
            for seed in (0, 1):
                eps = tf.random.stateless_normal(tf.shape(z), seed=(seed, 0))
                outs.append(dec(gen([z, eps], training=False), training=False))
            rows[key] = outs
        rows["recon"] = [self.dec_a(z_a, training=False), self.dec_b(z_b, training=False)]
        return rows
