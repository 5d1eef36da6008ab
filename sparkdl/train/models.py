"""Keras models: an MLP for tabular features, a small CNN, or a user's ``module:function``."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sparkdl.config.train import ModelConfig, TrainConfig
from sparkdl.errors import BadInputError

if TYPE_CHECKING:
    import tensorflow as tf


def build_model(
    cfg: ModelConfig,
    *,
    input_dim: int,
    num_classes: int,
    seed: int,
    fn: Callable[..., Any] | None = None,
) -> tf.keras.Model:
    """Build an uncompiled model whose output is ``num_classes`` logits (1 for regression).

    Parameters
    ----------
    cfg : ModelConfig
    input_dim : int
        Length of the ``features`` arrays.
    num_classes : int
        Number of classes; 1 means a regression output.
    seed : int
        Seed for weight initialisation (rank 0's weights are broadcast anyway).
    fn : callable, optional
        A model function ``fn(input_dim=, num_classes=)`` given as a Python object (the Python
        API's ``KerasEstimator(model=fn)``), used instead of ``cfg``.

    Returns
    -------
    tf.keras.Model

    Examples
    --------
    >>> build_model(ModelConfig(), input_dim=10, num_classes=2, seed=0).output_shape  # doctest: +SKIP
    (None, 2)
    """
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    if fn is not None:
        return checked_model(fn(input_dim=input_dim, num_classes=num_classes), source=_name(fn))
    if cfg.kind == "custom":
        return _custom(cfg.function or "", input_dim=input_dim, num_classes=num_classes)
    inputs = tf.keras.Input(shape=(input_dim,), name="features")
    if cfg.kind == "cnn":
        shape = tuple(cfg.image_shape) if len(cfg.image_shape) == 3 else (*cfg.image_shape, 1)
        if math.prod(shape) != input_dim:
            raise BadInputError(
                f"train.model.image_shape {list(cfg.image_shape)} holds {math.prod(shape)} values "
                f"but the dataset's features have {input_dim}; set an image_shape whose product "
                f"is {input_dim}"
            )
        x = tf.keras.layers.Reshape(shape)(inputs)
        for i in range(max(1, cfg.depth)):
            x = tf.keras.layers.Conv2D(cfg.filters * 2**i, 3, padding="same", activation="relu")(x)
            if min(x.shape[1], x.shape[2]) >= 2:
                x = tf.keras.layers.MaxPooling2D()(x)
        if cfg.head:
            x = tf.keras.layers.Flatten()(x)
            for width in cfg.head:
                x = tf.keras.layers.Dense(width, activation="relu")(x)
                x = tf.keras.layers.Dropout(cfg.dropout, rng_type="stateful")(x)
        else:
            x = tf.keras.layers.GlobalAveragePooling2D()(x)
            x = tf.keras.layers.Dropout(cfg.dropout, rng_type="stateful")(x)
    else:
        x = inputs
        for _ in range(cfg.depth):
            x = tf.keras.layers.Dense(cfg.hidden, activation="relu")(x)
            if cfg.dropout:
                x = tf.keras.layers.Dropout(cfg.dropout, rng_type="stateful")(x)
    outputs = tf.keras.layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name=f"sparkdl_{cfg.kind}")


def _custom(spec: str, *, input_dim: int, num_classes: int) -> Any:
    module_name, _, func_name = spec.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise BadInputError(
            f"train.model.function={spec!r} cannot be loaded ({exc}); it must name an importable "
            "function 'package.module:function' available on every executor"
        ) from exc
    try:
        model = func(input_dim=input_dim, num_classes=num_classes)
    except OSError:  # a download or a shared file that may be back on the next attempt
        raise
    except Exception as exc:  # the same function fails the same way on every rank and attempt
        raise BadInputError(
            f"train.model.function={spec!r} raised {type(exc).__name__}: {exc}; it must accept "
            "the keywords input_dim and num_classes and return a tf.keras.Model"
        ) from exc
    return checked_model(model, source=f"train.model.function={spec!r}")


def _name(fn: Callable[..., Any]) -> str:
    return f"model function {getattr(fn, '__qualname__', fn)!r}"


def checked_model(model: Any, *, source: str) -> Any:
    """Refuse what a model function returned unless it is a Keras model (``source`` names the
    function in the message)."""
    if not hasattr(model, "fit") or not hasattr(model, "compile"):
        raise BadInputError(
            f"{source} returned {type(model).__name__}, not a Keras model; it must return a "
            "tf.keras.Model whose output is num_classes logits (1 for regression)"
        )
    return model


def reseed_random_layers(model: tf.keras.Model, *, seed: int) -> bool:
    """Restart every random layer's stream from ``seed`` without retracing the train step.

    The built-in models' dropout draws from a ``tf.random.Generator`` (``rng_type="stateful"``)
    whose state is a variable the traced step reads, so resetting it makes an epoch's random
    draws depend on ``seed`` alone, as a resumed run needs, at no cost. Returns False when some
    random layer does not draw from such a generator (the caller must then reseed TensorFlow
    and retrace); custom models should always be retraced, as their random ops are not visible
    here.
    """
    layers = [
        layer for layer in model.submodules if getattr(layer, "_random_generator", None) is not None
    ]
    for layer in layers:
        gen = layer._random_generator
        gen._maybe_init()
        if getattr(gen, "_generator", None) is None:
            return False
    for i, layer in enumerate(layers):
        layer._random_generator._generator.reset_from_seed(seed * 1009 + i)
    return True


def start_epoch(model: tf.keras.Model, *, cfg: TrainConfig, epoch: int) -> None:
    """Seed epoch ``epoch``'s randomness from ``cfg.seed`` and the epoch alone (the trainer's and
    the plan calibration's epochs), so that a resumed attempt replays it exactly.

    Python's and NumPy's global generators are always seeded. The built-in models' dropout
    generators are reset in place and the traced train step is kept. TensorFlow's global seed is
    set, and the train step dropped for a retrace, only for a custom model or a random layer
    that cannot be reset (:func:`reseed_random_layers`): setting that seed clears TensorFlow's
    kernel caches, so every ``tf.function`` the epoch calls (the train step, local SGD's
    average, the validation scorer) is instantiated again on its next call. That cost 40 ms for
    local SGD's 70 KB epoch-end average (2 ms without it) and about 0.1 s for the MLP's first
    step.

    Examples
    --------
    >>> from sparkdl.config.train import ModelConfig
    >>> model = build_model(ModelConfig(), input_dim=3, num_classes=2, seed=0)
    >>> model.train_function = "traced"
    >>> start_epoch(model, cfg=TrainConfig(), epoch=1); model.train_function
    'traced'
    """
    import random

    import numpy as np
    import tensorflow as tf

    seed = cfg.seed + 7919 * epoch
    random.seed(seed)
    np.random.seed(seed)
    if cfg.model.kind != "custom" and reseed_random_layers(model, seed=seed):
        return
    tf.keras.utils.set_random_seed(seed)
    model.train_function = None


def make_optimizer(cfg: TrainConfig, lr: float) -> Any:
    """The ``train.optimizer`` at learning rate ``lr`` (Keras 2's legacy optimizers, which
    Horovod 0.28 wraps)."""
    import tensorflow as tf

    legacy = tf.keras.optimizers.legacy
    if cfg.optimizer == "sgd":
        return legacy.SGD(learning_rate=lr, momentum=0.9)
    if cfg.optimizer == "rmsprop":
        return legacy.RMSprop(learning_rate=lr)
    return legacy.Adam(learning_rate=lr)


def compile_for_training(model: Any, optimizer: Any, *, num_classes: int) -> None:
    """Compile as the ranks train: cross-entropy on logits and accuracy for a classification,
    squared error and MAE for a regression (``num_classes`` 1)."""
    import tensorflow as tf

    classification = num_classes > 1
    model.compile(
        optimizer=optimizer,
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if classification
        else tf.keras.losses.MeanSquaredError(),
        metrics=["accuracy"] if classification else ["mae"],
    )
