"""The layout's rules hold: the import contract covers every core module, and the Lambda zip
(`make lambda-package`) carries what the handler needs, from the installed packages."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import bqx

REPO = Path(__file__).resolve().parents[2]


def test_the_core_contract_names_every_module_of_bqx_but_the_cli():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    core = next(c for c in config["contracts"] if c["name"].startswith("bqx core"))
    children = {f"bqx.{m.name}" for m in pkgutil.iter_modules(bqx.__path__)} - {"bqx.cli"}
    assert set(core["source_modules"]) == children, "add new core modules to the contract"


def test_lambda_zip_imports_the_handler_in_a_clean_interpreter(tmp_path):
    env = {**os.environ, "BQX_HOME": str(tmp_path / "home")}
    subprocess.run(["make", "-s", "lambda-package"], cwd=REPO, env=env, check=True)
    unpacked = tmp_path / "lambda"
    with zipfile.ZipFile(REPO / "dist" / "lambda.zip") as archive:
        names = set(archive.namelist())
        archive.extractall(unpacked)
    assert "handler.py" in names and "bqx_online/service.py" in names
    assert not any(n.startswith(("models_ml/", "bqx/cli/")) for n in names)
    # -S: no site, so neither this checkout's editable install nor its .pth files are seen;
    # only the unpacked zip and the third-party packages (the Lambda layer's role) are.
    site = sysconfig.get_paths()["purelib"]
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import handler, bqx_online.service, bqx.sql\n"
        "assert handler.__file__.startswith(sys.argv[1]), handler.__file__\n"
        "assert bqx_online.service.__file__.startswith(sys.argv[1])\n"
        "assert 'create table' in bqx.sql.ddl('online')\n"
        "try:\n    import models_ml\nexcept ImportError:\n    pass\n"
        "else:\n    raise SystemExit('models_ml leaked into the zip or the path')\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(unpacked), site],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
