"""Loss terms as named, weighted parts: ``{name: (weight, per-example loss [B])}``.

A ``train_step`` builds one dict per player; ``total`` gives the per-example objective the
player minimises and ``logged`` the scalars it reports, so the two cannot drift apart.
"""

import tensorflow as tf


def total(terms):
    """sum_i weight_i * loss_i, per example ([B])."""
    parts = [float(w) * tf.cast(loss, tf.float32) for w, loss in terms.values() if w]
    if not parts:
        raise ValueError(f"Every loss term has weight 0: {', '.join(terms)}.")
    return tf.add_n(parts)


def logged(mean, terms, loss=None, name=None):
    """{term: mean of its unweighted loss} (plus ``name``: ``loss``), ``mean`` the reduction."""
    out = {key: mean(value) for key, (_, value) in terms.items()}
    if name is not None:
        out[name] = loss
    return out
