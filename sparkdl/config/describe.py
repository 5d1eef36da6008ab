"""``sparkdl config --describe SECTION``: every key of a section, from the config classes.

Each key's type and default come from its dataclass field, its bounds from the field's
``min``/``max`` metadata, and its text from the ``Attributes`` section of the class's numpydoc
docstring: the one place a key is documented.

Examples
--------
>>> print(describe("allreduce_check"))
allreduce_check.tensor_size: int = 8  (>= 1)
    Elements of each test tensor.
allreduce_check.rounds: int = 3  (>= 1)
    All-reduce rounds, each checked for the exact sum.
"""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
from collections.abc import Iterator
from typing import Any

from sparkdl.config.loader import closest_key, to_dict
from sparkdl.config.schema import SparkdlConfig
from sparkdl.errors import BadInputError

_ENTRY = re.compile(r"^    (\w+) : .*$")


def attribute_docs(cls: type) -> dict[str, str]:
    """The text of each entry of ``cls``'s ``Attributes`` docstring section, by name.

    Examples
    --------
    >>> from sparkdl.config.schema import LaunchConfig
    >>> attribute_docs(LaunchConfig)["num_workers"][:13]
    'Horovod ranks'
    """
    doc = cls.__doc__ or ""
    if "\n    Attributes\n    ----------\n" not in doc:
        return {}
    section = doc.split("\n    Attributes\n    ----------\n", 1)[1]
    docs: dict[str, list[str]] = {}
    name = None
    for line in section.splitlines():
        entry = _ENTRY.match(line)
        if entry:
            name = entry.group(1)
            docs[name] = []
        elif line.startswith("        ") and name:
            docs[name].append(line.strip())
        elif line.strip():
            break  # the next section
    return {k: " ".join(v) for k, v in docs.items()}


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def sections() -> dict[str, Any]:
    """Every section and subsection by its dotted path, with its default value.

    Examples
    --------
    >>> [p for p in sections() if p.startswith("train")]
    ['train', 'train.model', 'train.fault']
    """
    found: dict[str, Any] = {}

    def walk(path: str, value: Any) -> None:
        found[path] = value
        for f in dataclasses.fields(value):
            sub = getattr(value, f.name)
            if dataclasses.is_dataclass(sub):
                walk(f"{path}.{f.name}", sub)

    for f in dataclasses.fields(SparkdlConfig):
        walk(f.name, _default(f))
    return found


def _keys(path: str, value: Any) -> Iterator[str]:
    docs = attribute_docs(type(value))
    hints = {f.name: f for f in dataclasses.fields(value)}
    for name, f in hints.items():
        current = getattr(value, name)
        if dataclasses.is_dataclass(current):
            yield from _keys(f"{path}.{name}", current)
            continue
        bounds = [
            f"{op} {f.metadata[k]}" for k, op in (("min", ">="), ("max", "<=")) if k in f.metadata
        ]
        shown = json.dumps(to_dict(current))  # JSON is YAML: as a config file writes it
        yield f"{path}.{name}: {f.type} = {shown}" + (f"  ({', '.join(bounds)})" if bounds else "")
        text = docs.get(name, "(undocumented)")
        yield from textwrap.wrap(text, width=96, initial_indent="    ", subsequent_indent="    ")


def describe(section: str) -> str:
    """Every key under ``section`` (``train``, ``train.model``, ...): type, default, bounds, text.

    Raises
    ------
    BadInputError
        For a section that does not exist, naming the closest and listing them all.
    """
    found = sections()
    if section not in found:
        hint = closest_key(section, list(found))
        raise BadInputError(
            f"sparkdl config --describe {section!r}: no such section"
            f"{f'; did you mean {hint!r}?' if hint else '.'} Sections: {', '.join(found)}."
        )
    return "\n".join(_keys(section, found[section]))
