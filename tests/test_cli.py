import subprocess
import sys

import pytest

from k2m_cli.main import run


def k2m(*args):
    return subprocess.run([sys.executable, "-m", "k2m_cli.main", *args], capture_output=True, text=True)


def test_help_does_not_import_torch():
    code = ("import sys\nfrom k2m_cli.main import run\n"
            "try:\n    run(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "heavy = sorted(m for m in ('torch', 'numpy', 'h5py', 'smplx', 'open_clip') if m in sys.modules)\n"
            "assert not heavy, heavy\nprint('clean')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "clean" in result.stdout


HELP_WALK = """
import sys
import typer.main
from typer.testing import CliRunner
from k2m_cli.main import app

root = typer.main.get_command(app)

def walk(command, path):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, path + [name])

for path, command in walk(root, []):
    result = CliRunner().invoke(app, path + ["--help"])
    assert result.exit_code == 0, (path, result.output)
    if not hasattr(command, "commands"):  # a leaf command: its help shows an example
        assert "Example" in result.output, path
assert "torch" not in sys.modules
print("ok")
"""


def test_every_command_help_is_torch_free_and_has_an_example():
    result = subprocess.run([sys.executable, "-c", HELP_WALK], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip() == "ok"


def test_version_and_exit_codes(tmp_path):
    result = k2m("--version")
    assert result.returncode == 0 and result.stdout.startswith("k2m ")
    result = k2m("data", "synth", "--out", str(tmp_path / "c"), "--clips", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: --clips must be at least 1, got 0"]
    result = k2m("--debug", "data", "synth", "--out", str(tmp_path / "c"), "--clips", "0")
    assert result.returncode == 2 and "Traceback" in result.stderr
    result = k2m("data", "synth", "--no-such-option")
    assert result.returncode == 2 and "No such option" in result.stderr


def test_run_maps_user_error_to_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        run(["data", "synth", "--out", "x", "--families", "moonwalk"])
    assert info.value.code == 2
    assert "unknown moonwalk" in capsys.readouterr().err
