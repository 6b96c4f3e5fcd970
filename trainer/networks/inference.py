"""Graph-mode inference of a Keras network: every path the evaluation measures and its judges.

Called eagerly, a functional model dispatches every layer's ops from Python, one batch at a
time: the main job's evaluation spent most of its time there. ``run`` traces
``model(x, training=False)`` into a ``tf.function`` once per model (and once more for the
first batch of another size, after which the batch axis is left unknown) and reuses it.
The function reads the model's variables, so weights assigned later (a restored checkpoint,
averaged weights swapped in) are the ones it runs.
"""

import weakref

import keras
import tensorflow as tf

_FUNCTIONS = weakref.WeakKeyDictionary()


def run(model, x):
    """``model(x, training=False)`` through a cached graph; ``x`` a tensor, a numpy batch or a
    list of them (a multi-input model). A callable that is not a Keras layer (a wrapped function)
    is called as it is, eagerly."""
    if not isinstance(model, keras.layers.Layer):
        return model(x, training=False)
    fn = _FUNCTIONS.get(model)
    if fn is None:
        # A weak reference: the cache must not keep a discarded model alive.
        ref = weakref.ref(model)
        fn = tf.function(lambda t: ref()(t, training=False), reduce_retracing=True)
        _FUNCTIONS[model] = fn
    return fn(x)
