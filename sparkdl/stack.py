"""The version set that is known to install and run together (see ../shared/STACK.md)."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    """One package of the known-good stack and why that version."""

    distribution: str
    prefix: str
    why: str
    alternatives: tuple[str, ...] = ()

    def matches(self, version: str) -> bool:
        """Return True when ``version`` is the pinned one (``prefix`` ends in '.' for a series).

        Examples
        --------
        >>> Pin("numpy", "1.26.", "").matches("1.26.4")
        True
        """
        if self.prefix.endswith("."):
            return version.startswith(self.prefix)
        return version == self.prefix


KNOWN_GOOD: tuple[Pin, ...] = (
    Pin(
        "tensorflow-cpu",
        "2.15.",
        "last TensorFlow whose tf.keras is Keras 2, which Horovod's Keras integration needs",
        alternatives=("tensorflow",),
    ),
    Pin("keras", "2.15.", "Keras 2 (Keras 3 breaks Horovod's DistributedOptimizer)"),
    Pin("horovod", "0.28.1", "last Horovod release; built locally against TensorFlow"),
    Pin("pyspark", "3.5.", "Spark 3.5 runs on Java 17 and works with pyarrow 14 and pandas 2.2"),
    Pin("petastorm", "0.13.1", "reads Parquet into tf.data with per-rank sharding"),
    Pin("pyarrow", "14.0.2", "petastorm 0.13.1 needs the legacy ParquetDataset API (< 15)"),
    Pin("numpy", "1.26.", "TensorFlow 2.15 needs numpy < 2"),
    Pin("pandas", "2.2.", "pyspark 3.5 predates pandas 3"),
)


def installed_version(pin: Pin) -> tuple[str, str | None]:
    """Return (distribution found, its version) for a pin, trying its alternatives too.

    Examples
    --------
    >>> installed_version(Pin("numpy", "1.26.", ""))[0]
    'numpy'
    """
    for name in (pin.distribution, *pin.alternatives):
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return pin.distribution, None
