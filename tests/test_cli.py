"""The carousel-env command: help, info, and clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from carousel_env.cli import main


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("info", "download", "run"):
        assert command in out


def test_info_prints_population_catalog_and_click_model(capsys):
    assert main(["info", "--users", "deezer-small", "--click-model", "swipe", "--optimum"]) == 0
    out = capsys.readouterr().out
    assert "deezer-small" in out and "862" in out and "swipe" in out
    assert "mean_optimal_reward" in out


def test_info_json_for_a_synthetic_population(capsys):
    assert main(["info", "--users", "deezer-small", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_users"] == 9 and summary["n_items"] == 862
    assert summary["click_model"].startswith("cascade")


def test_deezer_before_download_says_which_command_downloads_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CAROUSEL_ENV_DATA_DIR", str(tmp_path))
    assert main(["info", "--users", "deezer"]) == 2
    assert "carousel-env download" in capsys.readouterr().err


def test_bad_argument_exits_with_a_message(capsys):
    assert main(["info", "--users", "deezer-small", "--l-init", "20"]) == 2
    assert "`l_init` (20) must not exceed `slate_size` (12)" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("carousel-env") is None, reason="console script not installed")
def test_console_script_is_installed():
    done = subprocess.run(["carousel-env", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "download" in done.stdout
