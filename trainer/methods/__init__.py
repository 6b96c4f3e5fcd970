"""Translation methods: one file each, registered by name in registry.py."""

from trainer.methods.registry import METHODS, build, get

__all__ = ["METHODS", "build", "get"]
