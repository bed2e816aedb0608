"""Every client: a bad option or config value is one line on stderr, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from image_pipeline.config import PROJECT_ROOT


def run(script: str, *args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("image_receiving.py", ["--size", "12"], "--size: expected WIDTHxHEIGHT"),
        ("image_receiving.py", ["--cameras", "0"], "--cameras and --frames must be at least 1"),
        ("image_receiving.py", ["--backgrounds", "/nonexistent"], "--backgrounds"),
        ("image_analysis.py", ["--until-idle", "soon"], "invalid float value: 'soon'"),
        ("image_event_alert.py", ["--bogus"], "unrecognized arguments: --bogus"),
        ("image_analysis.py", ["--config", "/nonexistent.yaml"], "config file not found"),
    ],
)
def test_bad_options_give_one_line(script: str, args: list[str], message: str) -> None:
    result = run(script, *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_config_value_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("analysis: {warmup_frames: -3}\n")
    result = run("image_analysis.py", "--config", str(bad))
    assert result.returncode == 2
    expected = "image_analysis.py: config error: analysis.warmup_frames: must be at least 1, got -3"
    assert result.stderr.strip() == expected


def test_unreachable_broker_is_one_clear_error() -> None:
    result = run("image_event_alert.py", "--bootstrap-servers", "127.0.0.1:1", "--until-idle", "1")
    assert result.returncode == 1
    assert "no Kafka broker answered" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
