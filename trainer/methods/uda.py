"""The ``uda`` capability: a softmax classifier head on the discriminators' shared layers.

Methods that can adapt a classifier from a labelled source domain (A) to an unlabelled target
(B) mix in ``UDAHead``: it declares the capability, the hyperparameters that switch the head on
and size it, and ``classify``. The method trains the head in its discriminator step from the
``class_logits`` output of ``disc_a`` / ``disc_b`` (source labels only).
"""

from typing import ClassVar

from trainer.methods.hparams import HParam


class UDAHead:
    CAPABILITIES: ClassVar[frozenset] = frozenset({"uda"})
    HPARAMS: ClassVar[dict] = {
        "uda": HParam(
            False,
            "Unsupervised domain adaptation: a classifier head on the discriminators' shared "
            "layers, trained on source labels.",
            shape=True,
        ),
        "num_classes": HParam(10, "Classes of the --uda classifier head.", shape=True),
        "lambda_cls": HParam(1.0, "Weight of the --uda classification loss on source images."),
    }

    # What switching the head on takes: --uda, and whatever validate_config asks for with it.
    UDA_HPARAMS: ClassVar[dict] = {"uda": True}

    def classify(self, x, domain="b"):
        """Class logits [B, num_classes] of images of ``domain`` ("a" or "b") from the head."""
        if not self.hp.uda:
            raise ValueError(f"{self.config.method} has no classifier: train it with --uda.")
        disc = {"a": self.disc_a, "b": self.disc_b}.get(domain)
        if disc is None:
            raise ValueError(f"domain must be 'a' or 'b', got {domain!r}.")
        return disc(x, training=False)["class_logits"]
