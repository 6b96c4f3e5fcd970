"""tf.distribute strategy from the configuration: one code path for CPU, GPUs, workers, TPUs."""

import json
import os

import tensorflow as tf
from absl import logging


def split_cpu(n):
    """Splits the host CPU into ``n`` logical devices (must run before TF initialises devices)."""
    if n <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing != n:
            raise RuntimeError(
                f"--cpu_devices={n} must be applied before TensorFlow starts, but {existing} "
                "CPU device(s) are already initialised in this process."
            ) from None


def make_strategy(train_config):
    """Returns the strategy named by ``--strategy``."""
    kind = train_config.strategy
    split_cpu(train_config.cpu_devices)
    # Listing logical devices initialises TensorFlow's context; MultiWorkerMirroredStrategy
    # must configure collective ops before that, so only the local strategies list them.
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if kind == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        # NCCL needs GPUs; on CPUs gradients are reduced on one device.
        return tf.distribute.MirroredStrategy(
            devices=devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    if kind == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy=multi_worker needs the TF_CONFIG environment variable "
                '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}}) on every worker.'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=train_config.tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {kind!r}.")


def is_chief(strategy):
    """True on the worker that owns model_dir (writes checkpoints, logs, samples, exports)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return task_type == "worker" and task_id == 0 and not has_chief


def describe(strategy):
    name = type(strategy).__name__
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name = "MultiWorkerMirroredStrategy"  # not its implementation class's name
    elif not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        name = "default strategy"
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy has no device list
        devices = ()
    text = f"{name} with {strategy.num_replicas_in_sync} replica(s)"
    if devices:
        text += f" on {', '.join(devices)}"
    logging.info("Strategy: %s", text)
    return text
