"""A feature network trained first on the source domain's labels, then frozen.

DTN's f and XGAN's teacher are digit classifiers (``networks.feature_classifier``) that learn
the source labels ``y_a`` alone during the run's first steps and then stay fixed while the
rest of the method trains against their features. ``PretrainPhase`` is that mechanism, once:

- the phase is the count of the network's optimizer updates, which the checkpoint holds, so
  a run killed in either phase resumes in it;
- while it lasts, the network is the only player (softmax cross-entropy on ``y_a``); after it,
  the network is in no player (frozen) and ``main_players()`` train;
- the logs carry ``<player>_phase`` (1 while the network trains, then 0), ``<player>_loss``,
  ``<player>_cls`` and ``<player>_acc``; both branches log every name (the other's as 0);
- the switch is a ``tf.cond`` around optimizer updates, which tf.distribute cannot synchronise
  across replicas, so with a phase the method trains on one replica.

A method using it names the player (``PHASE_PLAYER``), the hyperparameter counting the phase's
steps (``PHASE_STEPS``), what trains after it (``PHASE_REST``, for messages), and implements
``pretrain_network()`` (None: the method has no such network), ``main_players()``,
``main_step(batch)`` and ``main_log_names()``.
"""

import tensorflow as tf

from trainer import losses

# Strategies whose step runs on one replica: a tf.cond may hold optimizer updates there.
SINGLE_REPLICA = ("default", "one_device")


class PretrainPhase:
    PHASE_PLAYER = "f"
    PHASE_STEPS = "f_steps"
    PHASE_REST = "the other networks"

    @classmethod
    def validate_phase(cls, config):
        """Refuses phase settings this run cannot train with (ValueError naming the fix)."""
        p, key, n = cls.PHASE_PLAYER, cls.PHASE_STEPS, config.hparams[cls.PHASE_STEPS]
        if n < 0:
            raise ValueError(f"--{key} must be >= 0 (0 = a random frozen {p}), got {n}.")
        if n >= config.train.train_steps:
            raise ValueError(
                f"--{key}={n} leaves no step of --train_steps={config.train.train_steps} to "
                f"train {cls.PHASE_REST}: lower --{key} or raise --train_steps."
            )
        if n and config.train.strategy not in SINGLE_REPLICA:
            raise ValueError(
                f"{config.method} with --{key}={n} switches from training {p} to training "
                f"{cls.PHASE_REST} inside the step, which tf.distribute cannot synchronise "
                f"across replicas: train with --strategy=default or one_device instead of "
                f"{config.train.strategy}, or with --{key}=0."
            )
        if n and config.data.dataset == "folder":
            raise ValueError(
                f"{config.method} trains {p} on the source domain's class labels, and "
                "--dataset=folder has none: use a labelled dataset (e.g. --dataset=digits), "
                f"or --{key}=0 for a random frozen {p}."
            )

    # -- to implement -------------------------------------------------------------------------
    def pretrain_network(self):
        raise NotImplementedError

    def main_players(self):
        raise NotImplementedError

    def main_step(self, batch):
        raise NotImplementedError

    def main_log_names(self):
        raise NotImplementedError

    # -- the phase ----------------------------------------------------------------------------
    def pretrain_steps(self):
        return self.hp[self.PHASE_STEPS] if self.pretrain_network() is not None else 0

    def in_pretrain_phase(self):
        """Whether the next step trains the network (a bool tensor): it has made fewer than
        ``PHASE_STEPS`` updates."""
        opt = self.optimizers.get(self.PHASE_PLAYER)
        if opt is None:  # before make_optimizers, or no phase
            return tf.constant(self.pretrain_steps() > 0)
        return opt.iterations < self.pretrain_steps()

    def players(self):
        """The current phase's players: the network alone while it trains, then
        ``main_players()`` (the network frozen).

        A traced step names every player (the phase is chosen inside the graph), and so does
        ``make_optimizers``: the checkpoint holds every optimizer from the start. Without a
        phase the network is never a player and has no optimizer.
        """
        main = self.main_players()
        if self.pretrain_steps() == 0:
            return main
        first = {self.PHASE_PLAYER: [self.pretrain_network()]}
        if getattr(self, "_every_player", False) or tf.inside_function():
            return {**first, **main}
        return first if bool(self.in_pretrain_phase()) else main

    def make_optimizers(self, total_steps):
        self._every_player = True
        try:
            return super().make_optimizers(total_steps)
        finally:
            self._every_player = False

    def pretrain_log_names(self):
        return [f"{self.PHASE_PLAYER}_{k}" for k in ("loss", "cls", "acc")]

    def pretrain_step(self, batch):
        """One update of the network on the source labels."""
        p, y_a = self.PHASE_PLAYER, batch["y_a"]
        with tf.GradientTape() as tape:
            logits = self.pretrain_network()(batch["x_a"], training=True)["class_logits"]
            terms = {f"{p}_cls": (1.0, losses.masked_softmax_cross_entropy(y_a, logits))}
            loss, logs = self.weighted_loss(f"{p}_loss", terms)
        self.step(p, tape, loss)
        logs[f"{p}_acc"] = self.replica_share(losses.masked_accuracy(y_a, logits))
        return logs

    def phased_step(self, batch):
        """The phase's step or the main step, both returning every name either logs."""
        names = self.pretrain_log_names() + self.main_log_names()

        def padded(logs, phase):
            zero = tf.constant(0.0, tf.float32)
            out = {k: tf.cast(logs.get(k, zero), tf.float32) for k in names}
            # The fraction of steps (per logging interval) spent training the network.
            return {f"{self.PHASE_PLAYER}_phase": tf.constant(float(phase)), **out}

        if self.pretrain_steps() == 0:  # never trained: no phase to choose
            return padded(self.main_step(batch), 0)
        return tf.cond(
            self.in_pretrain_phase(),
            lambda: padded(self.pretrain_step(batch), 1),
            lambda: padded(self.main_step(batch), 0),
        )
