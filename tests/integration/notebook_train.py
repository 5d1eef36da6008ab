"""A notebook-style script: the user's own SparkSession and a Keras function as Horovod writes one.

Run by tests/integration/test_distributor.py as ``python notebook_train.py OUT.json``. The
training function is defined here, in ``__main__``, as in a notebook cell: cloudpickle ships it
to the executors by value. It follows Horovod's Keras example: ``hvd.init()``, the learning
rate scaled by ``hvd.size()``, ``hvd.DistributedOptimizer``, and the broadcast and metric
averaging callbacks.
"""

from __future__ import annotations

import json
import sys

from pyspark.sql import SparkSession

import sparkdl


def train(learning_rate: float, epochs: int = 3) -> dict:
    import hashlib

    import horovod.tensorflow as hvd_tf
    import horovod.tensorflow.keras as hvd
    import numpy as np
    import tensorflow as tf

    hvd.init()
    # each rank its own shard of one separable problem
    rng = np.random.default_rng(100 + hvd.rank())
    x = rng.normal(size=(2000, 10)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] > 0).astype("int32")
    tf.keras.utils.set_random_seed(hvd.rank())  # different initial weights until the broadcast
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(10,)),
            tf.keras.layers.Dense(16, activation="relu"),
            tf.keras.layers.Dense(2, activation="softmax"),
        ]
    )
    opt = hvd.DistributedOptimizer(tf.keras.optimizers.SGD(learning_rate * hvd.size()))
    model.compile(loss="sparse_categorical_crossentropy", optimizer=opt, metrics=["accuracy"])
    callbacks = [
        hvd.callbacks.BroadcastGlobalVariablesCallback(0),
        hvd.callbacks.MetricAverageCallback(),
    ]
    history = model.fit(
        x, y, batch_size=32, epochs=epochs, callbacks=callbacks, verbose=2 if hvd.rank() == 0 else 0
    )
    digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
    print(f"rank {hvd.rank()} of {hvd.size()} finished, weights {digest[:12]}", flush=True)
    return {
        "rank": hvd.rank(),
        "size": hvd.size(),
        "accuracy": [float(a) for a in history.history["accuracy"]],
        "digests": hvd_tf.allgather_object(digest),
    }


if __name__ == "__main__":
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("a user's notebook")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    lines: list[tuple[int, str]] = []
    result = sparkdl.run(train, 0.05, 4, num_workers=2, start_timeout_s=120)
    again = sparkdl.Distributor(num_workers=2, stream_output=lambda r, s: lines.append((r, s)))
    second = again.run(train, 0.05, epochs=1)
    spark.stop()
    with open(sys.argv[1], "w") as f:
        json.dump({"result": result, "second": second, "lines": lines}, f)
