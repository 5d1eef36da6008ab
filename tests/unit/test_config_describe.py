"""``sparkdl config --describe``: every key documented in its class, and the CLI around it."""

from __future__ import annotations

import dataclasses

import pytest

from sparkdl.cli import build_parser, main
from sparkdl.config.describe import attribute_docs, describe, sections
from sparkdl.errors import EXIT_BAD_INPUT, EXIT_OK


@pytest.mark.parametrize("path", list(sections()))
def test_every_key_of_every_section_is_documented_in_its_class(path: str) -> None:
    value = sections()[path]
    keys = {
        f.name
        for f in dataclasses.fields(value)
        if not dataclasses.is_dataclass(getattr(value, f.name))
    }
    docs = attribute_docs(type(value))
    assert keys - set(docs) == set(), f"{type(value).__name__}: no Attributes entry"
    assert set(docs) - keys == set(), f"{type(value).__name__}: documents keys it lacks"
    assert all(len(text) > 10 for text in docs.values())


def test_describe_shows_type_default_bounds_and_text_of_nested_keys() -> None:
    text = describe("train")
    assert "train.compression: Literal['none', 'fp16', 'topk', 'powersgd'] = \"none\"" in text
    assert "train.model.head: tuple[int, ...] = []" in text  # the subsection's keys too
    assert "train.epochs: int = 5  (>= 1)" in text
    assert "    Steps between weight averages (mode local_sgd)." in text


def test_config_describe_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--describe", "launch"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("launch.num_workers: int = 2  (>= 1)\n    Horovod ranks")
    assert main(["config", "--describe", "trian"]) == EXIT_BAD_INPUT
    assert "did you mean 'train'?" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["train", "--log-level", "DEBUG"], "DEBUG"),
        (["--log-level", "ERROR", "train"], "ERROR"),
        (["train"], "INFO"),
        (["bench", "comms", "--log-level", "WARNING"], "WARNING"),
    ],
)
def test_log_level_is_taken_before_or_after_the_subcommand(argv: list[str], level: str) -> None:
    assert build_parser().parse_args(argv).log_level == level


def test_a_jobs_arguments_take_log_level_and_refuse_a_bad_one(capsys) -> None:
    import argparse

    from sparkdl.commands import add_command_arguments, job_main

    parser = argparse.ArgumentParser()
    add_command_arguments("train", parser)
    assert parser.parse_args(["--log-level", "DEBUG"]).log_level == "DEBUG"
    with pytest.raises(SystemExit) as ended:
        job_main("prepare", ["--log-level", "LOUD"], description="prepare")
    assert ended.value.code == EXIT_BAD_INPUT
    assert "'LOUD' is not one of DEBUG, INFO, WARNING, ERROR" in capsys.readouterr().err
