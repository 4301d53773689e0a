"""Tests of the command registry: help, unknown commands, error rendering."""

import subprocess
import sys

from layerlab.cli import main as cli_main
from layerlab.core.errors import ConfigError


def test_help_lists_every_command(capsys):
    assert cli_main.main([]) == cli_main.EXIT_USAGE
    out = capsys.readouterr().out
    for name in cli_main.COMMANDS:
        assert name in out


def test_help_does_not_import_torch_or_django():
    code = "import sys; from layerlab.cli.main import build_parser; build_parser(None); print(sorted(m for m in ('torch','django') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_layerlab_error_becomes_one_line_and_exit_code(monkeypatch, capsys):
    def failing(args):
        raise ConfigError("unknown key 'x'", hint="did you mean 'y'?", where="train")

    monkeypatch.setattr(cli_main, "build_parser", _parser_with(failing))
    assert cli_main.main(["boom"]) == ConfigError.exit_code
    err = capsys.readouterr().err
    assert err == "error: train: unknown key 'x'; did you mean 'y'?\n"


def _parser_with(handler):
    import argparse

    def build(selected=None):
        parser = argparse.ArgumentParser(prog="layerlab")
        parser.add_argument("--version", action="store_true")
        sub = parser.add_subparsers(dest="command")
        sub.add_parser("boom").set_defaults(handler=handler)
        return parser

    return build
