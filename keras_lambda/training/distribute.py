"""tf.distribute strategies by name, and which worker does what."""

import os


from keras_lambda import _startup
from keras_lambda.errors import UsageError

tf = _startup.tensorflow_for("keras_lambda.training.distribute (strategies)")


def make_strategy(name):
    """`tf.distribute` strategy for `--strategy`; create it before any other op
    (multi-worker collectives must be configured at program start)."""
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()  # cluster from TF_CONFIG
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as error:
            raise UsageError(f"`strategy` 'tpu': no TPU found ({error})") from None
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def needs_static_shapes(strategy):
    """TPUs compile fixed shapes; multi-worker steps must match across workers."""
    return isinstance(
        strategy, (tf.distribute.TPUStrategy, tf.distribute.MultiWorkerMirroredStrategy)
    )


def is_chief(strategy):
    """True on the worker that writes: the "chief", or worker 0 without one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def uses_custom_loop(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def worker_dir(output_dir, strategy):
    """The chief writes into output_dir; other workers into a private folder of it."""
    if is_chief(strategy):
        return output_dir
    return os.path.join(output_dir, f".worker-{strategy.cluster_resolver.task_id}")
