"""Translation methods: one file each, registered by name in registry.py.

``METHODS``, ``build`` and ``get`` load the registry (and TensorFlow) on first use, so the
plain-Python declarations in ``trainer.methods.paths`` import without TensorFlow (the runtimes
read them).
"""

__all__ = ["METHODS", "build", "get"]


def __getattr__(name):
    if name in __all__:
        from trainer.methods import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'trainer.methods' has no attribute {name!r}")
