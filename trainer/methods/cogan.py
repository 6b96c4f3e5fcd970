"""CoGAN (Liu & Tuzel 2016): two GANs whose generators share their first layers and whose
discriminators share their last, so one noise vector z draws a pair of corresponding images.

Cross-domain translation follows the paper: invert g1 for a given x_a,
z* = argmin_z L(g1(z), x_a) with L-BFGS, then x_ab = g2(z*) (``translate``). ``--uda`` adds a
softmax head on the shared discriminator layers, trained with source labels (``classify``).
``--lambda_pair_feat`` adds the coupling term of the paper's released domain-adaptation code, which
the paper does not describe: D1's and D2's top features of one generated pair are pulled
together in D's update (``pair_feature_distance``).
"""

import weakref

import keras
import numpy as np
import scipy.optimize
import tensorflow as tf

from trainer import losses
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.hparams import GAN_LOSSES, NORMS
from trainer.methods.paths import Image, Noise, Path, uniform
from trainer.methods.uda import UDAHead
from trainer.networks import coupled_discriminators, coupled_generators

INVERT_LOSSES = {"l1": losses.l1, "l2": losses.l2}


# One traced objective per generator and loss, reused by every batch of the same shape: a
# function traced anew per call cost more than the L-BFGS-B iterations it serves.
_OBJECTIVES = weakref.WeakKeyDictionary()


def _objective(generator, loss):
    """tf.function (z, targets) -> (sum of the per-image losses, its gradient in z, per-image
    losses) of ``generator``."""
    per_loss = _OBJECTIVES.setdefault(generator, {})
    if loss not in per_loss:
        loss_fn, weak_generator = INVERT_LOSSES[loss], weakref.ref(generator)

        @tf.function(reduce_retracing=True)
        def value_and_grad(z, targets):
            with tf.GradientTape() as tape:
                tape.watch(z)
                per_image = loss_fn(weak_generator()(z, training=False), targets)
                total = tf.reduce_sum(per_image)
            return total, tape.gradient(total, z), per_image

        per_loss[loss] = value_and_grad
    return per_loss[loss]


def invert_generator(
    generator, x, latent_dim, *, max_iter=100, restarts=1, loss="l2", bound=1.0, seed=0
):
    """z* = argmin_z L(generator(z), x) per image, by SciPy's L-BFGS-B over TF gradients.

    The batch is solved as one problem, sum_i L(g(z_i), x_i): its terms are independent, so
    the gradient separates per image and one L-BFGS-B run inverts the whole batch.
    ``restarts`` random starts per image run side by side (the batch is tiled) and the start
    with the lowest final loss wins. z is boxed to [-bound, bound], the support of the
    uniform prior it was trained with (``bound=None`` for none). Runs eagerly.
    Returns ``(z [B, latent_dim] float32, per-image loss [B] float32)``.
    """
    if loss not in INVERT_LOSSES:
        raise ValueError(f"Unknown --invert_loss={loss!r}: choose one of l1, l2.")
    x = tf.convert_to_tensor(x, tf.float32)
    n = int(x.shape[0])
    if n == 0:
        return np.zeros((0, latent_dim), np.float32), np.zeros((0,), np.float32)
    restarts = max(int(restarts), 1)
    targets = tf.tile(x, [restarts, 1, 1, 1])
    shape = (restarts * n, latent_dim)

    compiled = _objective(generator, loss)

    def value_and_grad(z):
        return compiled(z, targets)

    def objective(flat):
        total, grad, _ = value_and_grad(tf.constant(flat.reshape(shape), tf.float32))
        return float(total), np.asarray(grad, np.float64).ravel()

    rng = np.random.default_rng(seed)
    low = -1.0 if bound is None else -bound
    z0 = rng.uniform(low, -low, shape)
    result = scipy.optimize.minimize(
        objective,
        z0.ravel(),
        jac=True,
        method="L-BFGS-B",
        bounds=None if bound is None else [(-bound, bound)] * z0.size,
        # The per-image losses are small (mean squared error of images in [-1, 1]): stop on
        # the iteration budget rather than on scipy's default relative tolerances.
        options={
            "maxiter": int(max_iter),
            "maxfun": 2 * int(max_iter) + 10,
            "ftol": 1e-15,
            "gtol": 1e-12,
        },
    )
    z = result.x.reshape(shape).astype(np.float32)
    per_image = np.asarray(value_and_grad(tf.constant(z))[2]).reshape(restarts, n)
    best = per_image.argmin(axis=0)
    z = z.reshape(restarts, n, latent_dim)[best, np.arange(n)]
    return z, per_image[best, np.arange(n)]


class CoGAN(UDAHead, TranslationModel):
    DATA = "unpaired"
    CAPABILITIES = frozenset({"uda", "noise_prior"})
    # z ~ U(-1, 1)^latent_dim: training draws it so, the exported z inputs declare it, and the
    # inversion boxes z* to its support.
    PRIOR = uniform(-1.0, 1.0)
    HPARAMS = {
        "latent_dim": HParam(
            100, "Size of the noise vector z ~ U(-1, 1) shared by g1 and g2.", shape=True
        ),
        "filters": HParam(
            32, "Width of the last generator layer and first discriminator layer.", shape=True
        ),
        "disc_layers": HParam(
            3, "Stride-2 layers of the discriminators (all but the first shared).", shape=True
        ),
        "gen_specific_layers": HParam(
            1,
            "Generator upsampling layers per domain (the ones before them are shared).",
            shape=True,
        ),
        "gen_norm": HParam(
            "batch",
            "Normalization in the generators: batch, instance, layer or none.",
            shape=True,
            choices=NORMS,
        ),
        "disc_norm": HParam(
            "batch",
            "Normalization in the discriminators' layers after the first: batch (as DCGAN; "
            "without it both GANs collapsed to one sample per domain at cogan.flags), "
            "instance, layer or none (the paper's).",
            shape=True,
            choices=NORMS,
        ),
        "disc_domain_norm": HParam(
            False,
            "Give each discriminator its own --disc_norm layers in the layers D1 and D2 share "
            "(the convolutions stay shared): domain-specific batch norm (Chang et al. 2019). "
            "With --disc_norm=batch each domain then keeps its own moving averages, so --uda "
            "may use batch norm. On mnist -> mnist_m it kept the samples diverse but the pair "
            "apart (correspondence 0.13, head 0.18; bench/RESULTS.md): cogan_uda.flags keeps "
            "layer norm.",
            shape=True,
        ),
        "minibatch_stddev": HParam(
            0,
            "Group size of ProGAN's minibatch standard deviation, appended to the features the "
            "discriminators' real/fake head reads (0 = off, the paper's).",
            shape=True,
        ),
        "gan_loss": HParam(
            "vanilla",
            "Adversarial loss: vanilla (the paper's), lsgan, hinge or wgan (wgan needs "
            "--gradient_penalty or --clip_weights).",
            choices=GAN_LOSSES,
        ),
        "lambda_pair_feat": HParam(
            0.0,
            "Weight of the squared distance (summed over D's top features, averaged over the "
            "batch) between D1's features of g1(z) and D2's of g2(z), in D's update: the "
            "coupling term of the paper's released domain-adaptation code (weight 0.01 "
            "there), which makes the per-domain first layers map a corresponding pair to one "
            "shared feature, so the --uda head reads the target as it reads the source. "
            "0 = off.",
        ),
        "invert_steps": HParam(100, "L-BFGS iterations when inverting g1/g2 for translation."),
        "invert_restarts": HParam(
            1, "Random starts per image for the inversion; the best fit is kept."
        ),
        "invert_loss": HParam(
            "l2", "Inversion objective L(g(z), x): l2 or l1.", choices=tuple(INVERT_LOSSES)
        ),
    }
    UDA_HPARAMS = {"uda": True, "disc_norm": "layer"}
    SMOKE_HPARAMS = {"filters": 4, "latent_dim": 8, "disc_layers": 2, "invert_steps": 5}

    @classmethod
    def validate_config(cls, config):
        super().validate_config(config)
        hp = config.hparams
        if hp.invert_steps < 1 or hp.invert_restarts < 1:
            raise ValueError("--invert_steps and --invert_restarts must be >= 1.")
        if hp.uda and hp.disc_norm == "batch" and not hp.disc_domain_norm:
            raise ValueError(
                "--uda with --disc_norm=batch: the --uda head reads D's shared layers, whose "
                "batch-norm moving averages mix both domains and real and generated batches, "
                "so at inference it takes almost every target image for one class (0.09 on "
                "mnist -> digits, bench/RESULTS.md). Use --disc_norm=layer (cogan_uda.flags), "
                "--disc_norm=none, or keep batch norm per domain with --disc_domain_norm."
            )
        if hp.minibatch_stddev < 0:
            raise ValueError(
                f"--minibatch_stddev={hp.minibatch_stddev} must be >= 0 (0 turns it off)."
            )

    def build_networks(self):
        hp, size = self.hp, self.image_size
        self.gen_a, self.gen_b, self.shared_gen = coupled_generators(
            size,
            latent_dim=hp.latent_dim,
            filters=hp.filters,
            specific_layers=hp.gen_specific_layers,
            norm=hp.gen_norm,
        )
        self.disc_a, self.disc_b = coupled_discriminators(
            size,
            filters=hp.filters,
            n_layers=hp.disc_layers,
            shared_layers=hp.disc_layers - 1,
            num_classes=hp.num_classes if hp.uda else 0,
            norm=hp.disc_norm,
            patch=False,
            minibatch_stddev=hp.minibatch_stddev,
            domain_norm=hp.disc_domain_norm,
        )

    def players(self):
        return {"gen": [self.gen_a, self.gen_b], "disc": [self.disc_a, self.disc_b]}

    def sample_z(self, n):
        return tf.random.uniform((n, self.hp.latent_dim), self.PRIOR["low"], self.PRIOR["high"])

    def train_step(self, batch):
        x_a, x_b = batch["x_a"], batch["x_b"]
        hp = self.hp
        z = self.sample_z(tf.shape(x_a)[0])
        with tf.GradientTape() as tape:
            fake_a = self.gen_a(z, training=True)
            fake_b = self.gen_b(z, training=True)
            terms = {
                "adv_a": (1.0, self.gan.generator(self.disc_a(fake_a, training=True)["logits"])),
                "adv_b": (1.0, self.gan.generator(self.disc_b(fake_b, training=True)["logits"])),
            }
            gen_loss, logs = self.weighted_loss("gen_loss", terms)
        self.step("gen", tape, gen_loss)

        fake_a, fake_b = tf.stop_gradient(fake_a), tf.stop_gradient(fake_b)
        metrics = {}
        with tf.GradientTape() as tape:
            terms = {
                **self.adversarial_terms("a", self.disc_a, x_a, fake_a),
                **self.adversarial_terms("b", self.disc_b, x_b, fake_b),
            }
            if hp.lambda_pair_feat > 0:
                terms["pair_feat"] = (
                    hp.lambda_pair_feat,
                    self.pair_feature_distance(fake_a, fake_b),
                )
            if hp.uda:
                y_a = batch["y_a"]
                logits = self.disc_a(x_a, training=True)["class_logits"]
                terms["cls_a"] = (hp.lambda_cls, losses.masked_softmax_cross_entropy(y_a, logits))
                metrics["acc_a"] = self.replica_share(losses.masked_accuracy(y_a, logits))
            disc_loss, disc_logs = self.weighted_loss("disc_loss", terms)
        self.step("disc", tape, disc_loss)
        return {**logs, **disc_logs, **metrics}

    def pair_feature_distance(self, x_a, x_b):
        """Per pair: sum over D's top features of (D1(x_a) - D2(x_b))^2 ([B])."""
        f_a = self.disc_a(x_a, training=True)["features"]
        f_b = self.disc_b(x_b, training=True)["features"]
        return tf.reduce_sum(tf.square(f_a - f_b), axis=[1, 2, 3])

    # -- inference ------------------------------------------------------------------------
    def translation_paths(self):
        d = self.config.data
        z_spec = Noise("z", self.PRIOR)
        z = keras.Input((self.hp.latent_dim,), name="z")
        image_a = keras.layers.Activation("linear", dtype="float32", name="image_a")(self.gen_a(z))
        image_b = keras.layers.Activation("linear", dtype="float32", name="image_b")(self.gen_b(z))
        paths = {
            "sample": Path(
                model=keras.Model(z, [image_a, image_b], name="sample"),
                inputs=(z_spec,),
                outputs=(Image("image_a"), Image("image_b")),
                target_domain=[d.domain_a, d.domain_b],
                description="z ~ U(-1, 1)^latent_dim -> (g1(z), g2(z)), a corresponding pair",
                extra={"domains": [d.domain_a, d.domain_b]},
            )
        }
        for name, gen, domain, text in (
            ("z2a", self.gen_a, d.domain_a, "g1(z); decode a code inverted from a B image: b2a"),
            ("z2b", self.gen_b, d.domain_b, "g2(z); decode a code inverted from an A image: a2b"),
        ):
            z = keras.Input((self.hp.latent_dim,), name="z")
            out = keras.layers.Activation("linear", dtype="float32", name="translated")(gen(z))
            paths[name] = Path(
                model=keras.Model(z, out, name=name),
                inputs=(z_spec,),
                outputs=(Image("translated"),),
                target_domain=domain,
                description=text,
            )
        # Served by translate() through L-BFGS inversion, not by an exported graph: evaluation
        # measures them, export skips them.
        for name, src, dst, text in (
            ("a2b", d.domain_a, d.domain_b, "g2(z*), z* = argmin_z L(g1(z), x_a) by L-BFGS-B"),
            ("b2a", d.domain_b, d.domain_a, "g1(z*), z* = argmin_z L(g2(z), x_b) by L-BFGS-B"),
        ):
            paths[name] = Path(
                model=None,
                inputs=(Image("image"),),
                outputs=(Image("translated"),),
                source_domain=src,
                target_domain=dst,
                description=f"{text} (not exported)",
                exported=False,
            )
        return paths

    def invert(self, x, domain="a"):
        """z* = argmin_z L(g(z), x) for images x of ``domain`` (L-BFGS-B, see invert_generator)."""
        gen = {"a": self.gen_a, "b": self.gen_b}[domain]
        hp = self.hp
        return invert_generator(
            gen,
            x,
            hp.latent_dim,
            max_iter=hp.invert_steps,
            restarts=hp.invert_restarts,
            loss=hp.invert_loss,
            bound=self.PRIOR["high"],  # the box of the symmetric uniform prior
            seed=self.config.train.seed,
        )[0]

    def translate(self, x, direction):
        """a2b: g2(z*) with z* inverted from g1 (b2a: g1 from g2's inversion); runs eagerly."""
        gens = {"a": self.gen_a, "b": self.gen_b}
        if direction in ("z2a", "z2b"):
            return gens[direction[-1]](tf.convert_to_tensor(x, tf.float32), training=False)
        if direction not in ("a2b", "b2a"):
            raise ValueError(
                f"cogan translates a2b, b2a (by inversion), z2a or z2b; got {direction!r}."
            )
        z = self.invert(x, direction[0])
        return gens[direction[-1]](tf.constant(z), training=False)

    def sample_images(self, batch):
        x_a = batch["x_a"]
        n = tf.shape(x_a)[0]
        low, high = self.PRIOR["low"], self.PRIOR["high"]
        z = tf.random.stateless_uniform((n, self.hp.latent_dim), (0, 0), minval=low, maxval=high)
        z_a = tf.constant(self.invert(x_a, "a"))
        return {
            "pairs": [self.gen_a(z, training=False), self.gen_b(z, training=False)],
            # x_a, its inversion through g1, and the translation g2(z*).
            "a2b": [x_a, self.gen_a(z_a, training=False), self.gen_b(z_a, training=False)],
        }
