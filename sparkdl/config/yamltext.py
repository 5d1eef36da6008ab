"""A YAML loader that keeps the text of unquoted scalars YAML 1.1 reads as non-strings.

YAML 1.1 (PyYAML) resolves plain ``no``, ``on``, ``1.50``, ``0x1F`` or ``2026-01-01`` to a
boolean, number or date. The config loader needs the written text back wherever a key expects
text, so :class:`TextKeepingLoader` returns such scalars as :class:`Scalar` (value and text);
the loader picks one per key's type and :func:`plain` drops the text everywhere else.

Examples
--------
>>> import yaml
>>> yaml.load("[no, 'no', 1.50]", Loader=TextKeepingLoader)
[Scalar(value=False, text='no'), 'no', Scalar(value=1.5, text='1.50')]
>>> plain(yaml.load("{a: [on, 2]}", Loader=TextKeepingLoader))
{'a': [True, 2]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

_KEEP_TEXT_TAGS = ("bool", "int", "float", "timestamp")


@dataclass(frozen=True)
class Scalar:
    """A plain YAML scalar that YAML resolved to a non-string, and the text it was written as."""

    value: Any
    text: str


class TextKeepingLoader(yaml.SafeLoader):
    """SafeLoader whose unquoted booleans, numbers and dates remember their source text."""


def _keeping_text(construct: Any) -> Any:
    def constructor(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
        value = construct(loader, node)
        return Scalar(value, node.value) if node.style is None else value

    return constructor


for _tag in _KEEP_TEXT_TAGS:
    TextKeepingLoader.add_constructor(
        f"tag:yaml.org,2002:{_tag}",
        _keeping_text(yaml.SafeLoader.yaml_constructors[f"tag:yaml.org,2002:{_tag}"]),
    )


def plain(value: Any) -> Any:
    """Drop the source text kept by the loader: plain dicts, lists and scalars."""
    if isinstance(value, Scalar):
        return value.value
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def key_text(key: Any) -> str:
    """A mapping key as written."""
    return key.text if isinstance(key, Scalar) else str(key)
