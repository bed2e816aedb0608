"""cli.ensure_data_dirs: data folders are created, and one the client cannot write is one line, not a traceback.

The unwritable case is real, not mocked: a forked child drops to nobody (when the tests run as
root, who may write anywhere) or meets a folder without write permission (otherwise), as uid 1000
in the container meets a bind-mounted folder that root cloned.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from image_pipeline import cli
from image_pipeline.config import Config, load_config

NOBODY = 65534


def config_for(data_dir: Path) -> Config:
    """The project's config with its data folders inside data_dir."""
    return load_config(None, env={}).with_overrides(data_dir=str(data_dir))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder outside pytest's private tmp tree, so that another uid can reach it."""
    path = Path(tempfile.mkdtemp(prefix="data-dirs-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for folder in path.rglob("*"):
            folder.chmod(0o755)
        shutil.rmtree(path)


def client_start(cfg: Config) -> int:
    """What every client does first."""
    cli.ensure_data_dirs(cfg)
    return 0


def run_ensure_as_other_user(cfg: Config, stderr_file: Path) -> int:
    """Fork; the child cannot write where cfg points and runs ensure_data_dirs as a client does. Its exit code."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        with stderr_file.open("w") as err:
            sys.stderr = err
            try:
                if os.geteuid() == 0:
                    os.setgroups([])
                    os.setgid(NOBODY)
                    os.setuid(NOBODY)
                code = cli.run_main("probe", lambda: client_start(cfg))
            except BaseException:  # what the interpreter would print for an uncaught error
                traceback.print_exc(file=err)
                code = 1
            err.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_missing_data_folders_are_created_and_no_check_file_is_left(tmp_path: Path) -> None:
    cfg = config_for(tmp_path / "data")
    cli.ensure_data_dirs(cfg)
    for folder in (cfg.images_dir, cfg.events_dir, cfg.alerts_dir):
        assert folder.is_dir()
        assert list(folder.iterdir()) == []


@pytest.mark.parametrize("folders_exist", [True, False], ids=["bind-mounted folder", "folder to create"])
def test_unwritable_data_folder_is_one_line_naming_it_and_the_fix(
    shared_dir: Path, tmp_path: Path, folders_exist: bool
) -> None:
    cfg = config_for(shared_dir)
    if folders_exist:
        cli.ensure_data_dirs(cfg)
    if os.geteuid() != 0:
        for folder in [shared_dir, *shared_dir.iterdir()]:
            folder.chmod(0o555)
    stderr_file = tmp_path / "stderr.txt"
    code = run_ensure_as_other_user(cfg, stderr_file)
    said = stderr_file.read_text()
    assert "Traceback" not in said
    assert code == 1
    lines = said.strip().splitlines()
    assert len(lines) == 1, said
    assert str(cfg.images_dir) in lines[0]
    assert "PIPELINE_UID=$(id -u)" in lines[0]
