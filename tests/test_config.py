"""config.yaml loading: defaults, overrides, and one clear error per bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from image_pipeline.config import EVENT_TYPES, ConfigError, load_config, parse_size


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_shipped_config_is_valid_and_covers_every_event_type() -> None:
    cfg = load_config(env={})
    covered = {t for s in cfg.subscriptions for t in s.event_types}
    assert covered == set(EVENT_TYPES)
    assert cfg.topics.errors.name == "image-errors"


def test_environment_overrides_bootstrap_and_data_dir(tmp_path: Path) -> None:
    cfg = load_config(env={"KAFKA_BOOTSTRAP_SERVERS": "h:1", "PIPELINE_DATA_DIR": str(tmp_path)})
    assert cfg.kafka.bootstrap_servers == "h:1"
    assert cfg.images_dir == tmp_path / "image_database"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.receiver\.camras: unknown key"):
        load_config(write(tmp_path, "receiver: {camras: 3}\n"), env={})


def test_wrong_type_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.receiver\.cameras: expected an integer"):
        load_config(write(tmp_path, "receiver: {cameras: many}\n"), env={})


def test_unknown_event_type_in_subscription(tmp_path: Path) -> None:
    text = "subscriptions:\n  - {name: a, contact: b, event_types: [fire]}\n"
    with pytest.raises(ConfigError, match="unknown event type 'fire'"):
        load_config(write(tmp_path, text), env={})


def test_relative_data_dir_is_resolved_against_the_config_folder(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "paths: {data_dir: data}\n"), env={})
    assert cfg.alerts_dir == tmp_path / "data" / "image_event_alerts"


@pytest.mark.parametrize("text", ["640", "640x", "0x480", "x480", "99999x10"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_size(text)


def test_subscription_matching() -> None:
    cfg = load_config(env={})
    security = next(s for s in cfg.subscriptions if "intrusion" in s.event_types)
    assert security.matches("cam-01", "intrusion", 0.9)
    assert not security.matches("cam-01", "intrusion", 0.1)
    assert not security.matches("cam-01", "tamper", 0.9)
