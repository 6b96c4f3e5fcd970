"""What every translation method shares: players, optimizers, loss reduction, export paths.

Declarations a method makes (read by the other stages; see trainer/methods/README.md):
``HPARAMS`` (``HParam``, with ``shape=True`` where a value changes variable shapes), ``DATA``
(the batches it trains on, a kind of ``trainer.data``), ``CAPABILITIES`` (e.g. "uda",
"noise_prior", "conditional") and ``translation_paths()`` (``{name: Path}``).
"""

import contextlib
from typing import ClassVar

import keras
import tensorflow as tf

from trainer import losses
from trainer.methods import hparams as hparams_lib
from trainer.methods.hparams import COMMON_HPARAMS, HParam
from trainer.methods.optim import (
    LinearDecay,
    WeightAverages,
    clip_weights,
    make_optimizer,
    unique_variables,
)
from trainer.methods.paths import image_path
from trainer.networks import inference

__all__ = [
    "COMMON_HPARAMS",
    "KNOWN_CAPABILITIES",
    "HParam",
    "LinearDecay",
    "TranslationModel",
    "unique_variables",
]

# What a method can declare in CAPABILITIES: "uda" (a classifier head, ``classify``),
# "noise_prior" (a path takes a declared noise input), "conditional" (a path takes a one-hot
# condition such as a target domain).
KNOWN_CAPABILITIES = frozenset({"uda", "noise_prior", "conditional"})


class TranslationModel(keras.Model):
    """Base of every method. Subclasses implement build_networks, players and train_step.

    ``players()`` maps a player name ("gen", "disc" ...) to the networks it trains; each
    player gets its own optimizer (``self.optimizers[name]``) and its own GradientTape in
    ``train_step``. Networks are attributes named by role (gen_ab, disc_a, enc_a ...).
    """

    HPARAMS: ClassVar[dict] = {}
    DATA: ClassVar[str] = "unpaired"  # which batches train_step takes: see trainer.data
    CAPABILITIES: ClassVar[frozenset] = frozenset()
    # Players whose weights --clip_weights clips after each of their updates.
    CRITICS: ClassVar[frozenset] = frozenset({"disc"})
    # Every player's optimizer: one of optim.OPTIMIZERS.
    OPTIMIZER: ClassVar[str] = "adam"
    # Whether training batches carry the source domain's labels (y_a) for a method defined to
    # learn from them (DTN's f); --uda turns them on for UDA heads. Target labels never.
    SOURCE_LABELS: ClassVar[bool] = False

    def __init__(self, config, **kwargs):
        config = self.complete_config(config)
        self.validate_config(config)
        super().__init__(name=config.method, **kwargs)
        self.config = config
        self.hp = config.hparams
        self.image_size = config.data.image_size
        self.global_batch_size = config.data.batch_size
        self.gan = losses.gan_loss(self.hp.gan_loss)
        self.build_networks()
        self.optimizers = {}
        self.averages = None
        if self.hp.ema_decay > 0:
            self.averages = WeightAverages(self.averaged_variables(), self.hp.ema_decay)

    @classmethod
    def hparam_specs(cls):
        specs = dict(COMMON_HPARAMS)
        for klass in reversed(cls.__mro__):
            specs.update(klass.__dict__.get("HPARAMS", {}))
        return specs

    @classmethod
    def shape_hparams(cls):
        """Hyperparameters a resumed run must keep (they change variable shapes)."""
        return hparams_lib.shape_hparams(cls.hparam_specs())

    @classmethod
    def complete_config(cls, config):
        """``config`` with defaults for hyperparameters it lacks (a run saved before they
        existed restores with the behaviour it was trained with)."""
        specs = cls.hparam_specs()
        missing = {k: s.default for k, s in specs.items() if k not in config.hparams}
        if not missing:
            return config
        return config.replace(hparams=type(config.hparams)({**missing, **config.hparams}))

    @classmethod
    def network_switches(cls, hparams):
        """{setting: value} of settings that add or remove networks without being a shape
        hyperparameter (e.g. a loss weight whose 0 builds no network): a resume across one is
        refused like a changed shape. Subclasses extend the base's."""
        return {"ema_decay > 0": hparams.get("ema_decay", 0.0) > 0}

    @classmethod
    def reads_source_labels(cls, hparams):
        """Whether training batches of a run with ``hparams`` carry the source labels (y_a):
        ``SOURCE_LABELS``, unless the method learns from them only in some settings."""
        return cls.SOURCE_LABELS

    @classmethod
    def validate_config(cls, config):
        """Refuses settings this method cannot train with (ValueError naming the flag)."""
        hparams_lib.validate(cls.hparam_specs(), config)

    # -- to implement -------------------------------------------------------------------
    def build_networks(self):
        raise NotImplementedError

    def players(self):
        """{player name: [networks it trains]}."""
        raise NotImplementedError

    def active_players(self):
        """The players the next ``train_step`` updates: all of them, unless the method trains
        in phases (then the others' weights stay bit-identical during the step)."""
        return self.players()

    def translation_paths(self):
        """{path name: trainer.methods.paths.Path}: what export freezes and evaluation runs."""
        raise NotImplementedError

    def sample_images(self, batch):
        """{row group name: [image tensors [B,H,W,C] in [-1, 1]]} for sample grids."""
        raise NotImplementedError

    def checkpoint_items(self):
        """Extra trackables that must survive a restart (image pools ...)."""
        return {}

    # -- shared ---------------------------------------------------------------------------
    def two_way_paths(self, ab, ba, ab_description, ba_description):
        """The usual a2b / b2a pair of single-image Paths (``ab``, ``ba``: keras.Models)."""
        d = self.config.data
        return {
            "a2b": image_path(ab, d.domain_a, d.domain_b, ab_description),
            "b2a": image_path(ba, d.domain_b, d.domain_a, ba_description),
        }

    def updates_per_step(self):
        """``{player: optimizer updates in one training step}``; players not named make one.

        A Keras schedule runs on its optimizer's update count, so each player's learning-rate
        schedule is stretched by its own count: a critic updated ``n_critic`` times per step
        decays over the same training steps as its generator (in training steps it would reach
        a rate of 0 at ``train_steps / n_critic`` and leave G to exploit a frozen critic).
        """
        return {}

    def make_optimizers(self, total_steps):
        """One ``OPTIMIZER`` per player, built on its variables (required under MirroredStrategy),
        each with the linear-decay schedule counted in its own updates (``updates_per_step``)."""
        hp = self.hp
        decay_start = hp.decay_start_step
        if decay_start < 0:
            decay_start = total_steps // 2
        elif decay_start == 0:
            decay_start = total_steps  # constant, as --decay_start_step=0 says
        counts = self.updates_per_step()
        for name, networks in self.players().items():
            n = int(counts.get(name, 1))
            schedule = LinearDecay(hp.lr, decay_start * n, total_steps * n)
            opt = make_optimizer(self.OPTIMIZER, schedule, hp, name)
            if self.config.train.mixed_precision:
                opt = keras.optimizers.LossScaleOptimizer(opt, name=f"{name}_loss_scale")
            opt.build(unique_variables(networks))
            self.optimizers[name] = opt
        self.built = True
        return self.optimizers

    def mean(self, per_example):
        """Per-replica share of the global-batch mean of a per-example loss."""
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)

    def replica_share(self, scalar):
        """A batch-independent term (a regularizer), split so replicas sum to it once."""
        return scalar / tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, scalar.dtype)

    def weighted_loss(self, name, terms):
        """The loss a player minimises and what is logged of it, from one dict.

        ``terms``: ``{term: (weight, loss)}``, ``loss`` per example ([B]) or batch-independent
        (a scalar). Returns ``(total, logs)``: ``total`` = this replica's share of
        sum(weight * mean(loss)), ``logs`` = ``{name: total, term: mean(loss) ...}`` (each term
        unweighted), so what is logged always adds up to what is optimised.
        """
        total, logs = 0.0, {}
        for term, (weight, loss) in terms.items():
            loss = tf.cast(loss, tf.float32)
            share = self.replica_share(loss) if loss.shape.rank == 0 else self.mean(loss)
            logs[term] = share
            total += weight * share
        logs = {name: tf.convert_to_tensor(total, tf.float32), **logs}
        return logs[name], logs

    def adversarial_terms(self, suffix, disc, real, fake, weight=1.0, output="logits"):
        """A discriminator's terms on (real, fake): its GAN loss and, with
        --gradient_penalty, the WGAN-GP penalty: ``{disc_<suffix>, gp_<suffix>}``."""

        def logits(x):
            out = disc(x, training=True)
            return out[output] if isinstance(out, dict) else out

        terms = {f"disc_{suffix}": (weight, self.gan.discriminator(logits(real), logits(fake)))}
        if self.hp.gradient_penalty > 0:
            penalty = losses.gradient_penalty(lambda x, training=True: logits(x), real, fake)
            terms[f"gp_{suffix}"] = (self.hp.gradient_penalty, penalty)
        return terms

    def step(self, player, tape, loss):
        """Applies ``player``'s gradients of ``loss`` recorded on ``tape`` (then, for a critic
        with --clip_weights, clips its weights)."""
        opt = self.optimizers[player]
        variables = unique_variables(self.players()[player])
        # Loss scaling (mixed precision) multiplies the output gradient, which equals
        # differentiating the scaled loss but works after the tape has closed.
        scale = opt.scale_loss(tf.ones_like(loss))
        grads = tape.gradient(loss, variables, output_gradients=scale)
        opt.apply_gradients(zip(grads, variables))
        if player in self.CRITICS and self.hp.clip_weights > 0:
            clip_weights(variables, self.hp.clip_weights)

    # -- weight averages (--ema_decay) ---------------------------------------------------
    def averaged_variables(self):
        """The weights --ema_decay averages: those of every runnable translation path (what
        evaluation, the sample grids and export run)."""
        paths = self.translation_paths().values()
        return unique_variables([p.model for p in paths if p.model is not None])

    def update_averages(self, step):
        """One moving-average update after training step ``step`` (cross-replica context)."""
        if self.averages is not None:
            self.averages.update(step)

    def averaged_weights(self):
        """A context in which the averaged weights are live (a no-op without --ema_decay)."""
        return self.averages.swapped_in() if self.averages else contextlib.nullcontext()

    def adopt_averages(self):
        """Makes the averaged weights the model's for good (a restored model about to be
        evaluated or exported)."""
        if self.averages is not None:
            self.averages.adopt()

    def translate(self, x, direction):
        """Translates a batch in [-1, 1] along a single-image path (evaluation uses this)."""
        if not hasattr(self, "_path_cache"):
            self._path_cache = self.translation_paths()
        path = self._path_cache.get(direction)
        if path is None or path.model is None:
            runnable = sorted(n for n, p in self._path_cache.items() if p.model is not None)
            raise ValueError(
                f"{self.config.method} has no path {direction!r} to run; it has "
                f"{', '.join(runnable)}."
            )
        return inference.run(path.model, x)

    def call(self, inputs, training=False):
        raise NotImplementedError(
            f"{type(self).__name__} is trained with train_step and run through "
            "translation_paths()/translate(), not called directly."
        )
