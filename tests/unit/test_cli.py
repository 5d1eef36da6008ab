"""The sparkdl command line: only working subcommands, config errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from sparkdl.cli import EXIT_BAD_INPUT, build_parser, main


def test_help_lists_only_working_subcommands() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {
        "doctor",
        "config",
        "generate",
        "prepare",
        "train",
        "sgd",
        "kmeans",
        "evaluate",
        "predict",
        "pipeline",
        "bench",
        "plan",
    }
    bench = next(a for a in sub.choices["bench"]._actions if a.dest == "bench")
    assert set(bench.choices) == {"prepare", "train", "baselines", "comms", "plan"}


def test_config_prints_resolved_yaml(capsys: pytest.CaptureFixture[str], repo) -> None:
    code = main(
        ["config", "--config", str(repo / "conf" / "local.yaml"), "--set", "launch.num_workers=3"]
    )
    assert code == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["launch"]["num_workers"] == 3
    assert data["spark"]["profile"] == "local"


def test_misspelt_key_exits_2_and_names_closest_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--set", "launch.num_wokers=3"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "unknown config key 'launch.num_wokers'" in err
    assert "did you mean 'launch.num_workers'" in err


def test_console_entry_point_runs(repo) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sparkdl.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "doctor" in proc.stdout and "config" in proc.stdout


def test_the_cli_commands_are_the_registered_steps() -> None:
    from sparkdl.commands import COMMANDS
    from sparkdl.errors import BadInputError
    from sparkdl.steps import STEPS, run_step

    assert set(COMMANDS) == (set(STEPS) - {"report"}) | {"pipeline"}
    for name, step in STEPS.items():
        if name in COMMANDS:
            assert (COMMANDS[name].help, COMMANDS[name].training) == (step.help, step.training)
    with pytest.raises(BadInputError, match="no step 'prepair'; did you mean 'prepare'"):
        run_step("prepair")
