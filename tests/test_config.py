"""config.yaml loading: defaults, overrides, and one clear error per bad key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.runner import write_config
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


# ---------------------------------------------------------------- unreadable files: one line naming the file


def test_non_utf8_config_is_one_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"receiver: {cameras: 2}\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: not UTF-8") as info:
        load_config(path, env={})
    assert "\n" not in str(info.value)


def test_a_5000_digit_integer_is_one_error_naming_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "receiver:\n  seed: " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: line 2: a number of 5000 digits") as info:
        load_config(path, env={})
    assert len(str(info.value)) < 300


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not valid YAML \(line \d+, column \d+: expected") as info:
        load_config(write(tmp_path, "receiver: {cameras: [\n"), env={})
    assert "\n" not in str(info.value)


def test_a_huge_hex_integer_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"limits\.max_side: must be at most 100,000, got <int too large"):
        load_config(write(tmp_path, "limits: {max_side: 0x" + "f" * 5000 + "}\n"), env={})


def test_non_string_unknown_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.receiver\.1: unknown key"):
        load_config(write(tmp_path, "receiver: {1: 2, camras: 3}\n"), env={})


# ---------------------------------------------------------------- every limit, count, port and timeout in range


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("limits: {max_side: -1}", "limits.max_side"),
        ("limits: {max_side: 0}", "limits.max_side"),
        ("limits: {max_pixels: 20000000000}", "limits.max_pixels"),
        ("web: {port: 0}", "web.port"),
        ("web: {port: 65536}", "web.port"),
        ("web: {recent_messages: -5}", "web.recent_messages"),
        ("kafka: {request_timeout_ms: 0}", "kafka.request_timeout_ms"),
        ("kafka: {session_timeout_ms: -1}", "kafka.session_timeout_ms"),
        ("kafka: {delivery_timeout_ms: 3000000000}", "kafka.delivery_timeout_ms"),
        ("kafka: {max_poll_interval_ms: 0}", "kafka.max_poll_interval_ms"),
        ("receiver: {fps: 1000000}", "receiver.fps"),
        ("receiver: {fps: .nan}", "receiver.fps"),
        ("receiver: {cameras: 100000}", "receiver.cameras"),
        ("analysis: {idle_close_s: .inf}", "analysis.idle_close_s"),
        ("topics: {images: {name: images, partitions: 100000}}", "topics.images.partitions"),
        ('topics: {images: {name: "images\\n"}}', "topics.images.name"),
        ('groups: {analyzer: ""}', "groups.analyzer"),
        ("subscriptions: [{name: a, contact: b, min_score: 2}]", r"subscriptions\[0\]\.min_score"),
        ("subscriptions: [{name: a, contact: b, cameras: [cam/1]}]", r"subscriptions\[0\]\.cameras"),
        ('subscriptions: [{name: "", contact: b}]', r"subscriptions\[0\]\.name"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^(config\.)?{key}: ") as info:
        load_config(write(tmp_path, text + "\n"), env={})
    assert "\n" not in str(info.value)


def test_detector_and_idle_close_are_kept_and_checked(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "analysis: {detector: mog2, idle_close_s: 2.5}\n"), env={})
    assert (cfg.analysis.detector, cfg.analysis.idle_close_s) == ("mog2", 2.5)
    with pytest.raises(ConfigError, match=r"analysis\.detector: unknown detector 'yolo'"):
        load_config(write(tmp_path, "analysis: {detector: yolo}\n"), env={})
    with pytest.raises(ConfigError, match=r"analysis\.idle_close_s: must be at least"):
        load_config(write(tmp_path, "analysis: {idle_close_s: 0}\n"), env={})


# ---------------------------------------------------------------- data folders stay inside data_dir


@pytest.mark.parametrize("key", ["images", "events", "alerts"])
@pytest.mark.parametrize("bad", ["/etc", "../x", "a/../../b", "a/b", ".", "..", "", "x\\n"])
def test_data_folders_must_be_plain_names_inside_data_dir(tmp_path: Path, key: str, bad: str) -> None:
    with pytest.raises(ConfigError, match=rf"^paths\.{key}: must be a plain folder name"):
        load_config(write(tmp_path, f"paths: {{{key}: {json.dumps(bad)}}}\n"), env={})


def test_data_folders_must_differ(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="three different folders"):
        load_config(write(tmp_path, "paths: {images: data, events: data}\n"), env={})


def test_absolute_data_dir_and_originals_written_by_the_tools_load_back(tmp_path: Path) -> None:
    cfg = load_config(env={}).with_overrides(data_dir=str(tmp_path / "data"))
    again = load_config(write_config(cfg, tmp_path / "run" / "config.yaml"), env={})
    assert again.data_dir == tmp_path / "data"
    assert again.originals_dir == cfg.originals_dir
    assert again.images_dir == tmp_path / "data" / "image_database"
