"""What every translation method shares: players, optimizers, loss reduction, export paths."""

from typing import Any, ClassVar, NamedTuple

import keras
import tensorflow as tf


class HParam(NamedTuple):
    """A method hyperparameter: its default and the help text of its ``--flag``."""

    default: Any
    help: str


COMMON_HPARAMS = {
    "lr": HParam(2e-4, "Adam learning rate of every player."),
    "beta_1": HParam(0.5, "Adam beta_1."),
    "beta_2": HParam(0.999, "Adam beta_2."),
    "weight_decay": HParam(0.0, "Decoupled weight decay (AdamW) of every player; 0 = plain Adam."),
    "decay_start_step": HParam(
        -1,
        "Step where the learning rate starts decaying linearly to 0 at --train_steps; "
        "-1 = half of --train_steps, 0 or more than --train_steps = constant.",
    ),
    "filters": HParam(64, "Width (filters of the first layer) of generators and discriminators."),
    "gan_loss": HParam("lsgan", "Adversarial loss: lsgan, vanilla, wgan or hinge."),
}


class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant ``initial`` until ``decay_start``, then linear to 0 at ``total_steps``."""

    def __init__(self, initial, decay_start, total_steps):
        self.initial = float(initial)
        self.decay_start = int(decay_start)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        span = float(max(self.total_steps - self.decay_start, 1))
        frac = tf.clip_by_value((step - self.decay_start) / span, 0.0, 1.0)
        return self.initial * (1.0 - frac)

    def get_config(self):
        return {
            "initial": self.initial,
            "decay_start": self.decay_start,
            "total_steps": self.total_steps,
        }


def unique_variables(models):
    """Trainable variables of ``models`` with shared layers counted once (UNIT, CoGAN)."""
    seen, out = set(), []
    for model in models:
        for v in model.trainable_variables:
            key = id(v)
            if key not in seen:
                seen.add(key)
                out.append(v)
    return out


class TranslationModel(keras.Model):
    """Base of every method. Subclasses implement build_networks, players and train_step.

    ``players()`` maps a player name ("gen", "disc" ...) to the networks it trains; each
    player gets its own optimizer (``self.optimizers[name]``) and its own GradientTape in
    ``train_step``. Networks are attributes named by role (gen_ab, disc_a, enc_a ...).
    """

    HPARAMS: ClassVar[dict] = {}
    DATA: ClassVar[str] = "unpaired"  # which batches train_step takes: see trainer.data

    def __init__(self, config, **kwargs):
        super().__init__(name=config.method, **kwargs)
        self.config = config
        self.hp = config.hparams
        self.image_size = config.data.image_size
        self.global_batch_size = config.data.batch_size
        self.build_networks()
        self.optimizers = {}

    @classmethod
    def hparam_specs(cls):
        specs = dict(COMMON_HPARAMS)
        for klass in reversed(cls.__mro__):
            specs.update(getattr(klass, "HPARAMS", {}))
        return specs

    # -- to implement -------------------------------------------------------------------
    def build_networks(self):
        raise NotImplementedError

    def players(self):
        """{player name: [networks it trains]}."""
        raise NotImplementedError

    def translation_paths(self):
        """{path name: functional keras.Model} frozen by the export stage."""
        raise NotImplementedError

    def sample_images(self, batch):
        """{row group name: [image tensors [B,H,W,C] in [-1, 1]]} for sample grids."""
        raise NotImplementedError

    def path_info(self):
        """{path name: {"source_domain", "target_domain", "domains", "description"}}."""
        return {}

    def two_way_path_info(self, ab, ba):
        """path_info of the usual a2b / b2a pair, described by ``ab`` and ``ba``."""
        d = self.config.data
        return {
            "a2b": {"source_domain": d.domain_a, "target_domain": d.domain_b, "description": ab},
            "b2a": {"source_domain": d.domain_b, "target_domain": d.domain_a, "description": ba},
        }

    def checkpoint_items(self):
        """Extra trackables that must survive a restart (image pools ...)."""
        return {}

    # -- shared ---------------------------------------------------------------------------
    def make_optimizers(self, total_steps):
        """One optimizer per player, built on its variables (required under MirroredStrategy)."""
        hp = self.hp
        decay_start = hp.decay_start_step
        if decay_start < 0:
            decay_start = total_steps // 2
        for name, networks in self.players().items():
            schedule = LinearDecay(hp.lr, decay_start, total_steps)
            kwargs = dict(learning_rate=schedule, beta_1=hp.beta_1, beta_2=hp.beta_2)
            if hp.weight_decay > 0:
                opt = keras.optimizers.AdamW(weight_decay=hp.weight_decay, **kwargs, name=name)
            else:
                opt = keras.optimizers.Adam(**kwargs, name=name)
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

    def step(self, player, tape, loss):
        """Applies ``player``'s gradients of ``loss`` recorded on ``tape``."""
        opt = self.optimizers[player]
        variables = unique_variables(self.players()[player])
        # Loss scaling (mixed precision) multiplies the output gradient, which equals
        # differentiating the scaled loss but works after the tape has closed.
        scale = opt.scale_loss(tf.ones_like(loss))
        grads = tape.gradient(loss, variables, output_gradients=scale)
        opt.apply_gradients(zip(grads, variables))

    def translate(self, x, direction):
        """Translates a batch in [-1, 1] along a single-image path (evaluation uses this)."""
        if not hasattr(self, "_path_cache"):
            self._path_cache = self.translation_paths()
        if direction not in self._path_cache:
            raise ValueError(
                f"{self.config.method} has no path {direction!r}; it has "
                f"{', '.join(sorted(self._path_cache))}."
            )
        return self._path_cache[direction](x, training=False)

    def call(self, inputs, training=False):
        raise NotImplementedError(
            f"{type(self).__name__} is trained with train_step and run through "
            "translation_paths()/translate(), not called directly."
        )
