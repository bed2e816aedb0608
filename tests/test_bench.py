"""The benchmark in smoke mode: tiny sizes on the test broker. It checks that every figure is produced, never speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from image_pipeline.config import PROJECT_ROOT

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

LATENCY_KEYS = ("p50", "p95", "p99")
CLIENTS = ("receiver", "analyzer", "alerter")


@pytest.fixture(scope="module")
def smoke_report(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """The JSON report and the printed table of one smoke run."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "devtools.bench", "--smoke", "--bootstrap-servers", kafka_bootstrap,
         "--json", str(out)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def _positive(value: Any, where: str) -> None:
    assert isinstance(value, int | float) and not isinstance(value, bool), f"{where} is not a number: {value!r}"
    assert value > 0, f"{where} is not positive: {value!r}"


def test_smoke_report_has_every_required_key_with_positive_numbers(smoke_report: tuple[dict[str, Any], str]) -> None:
    report, _ = smoke_report
    assert report["mode"] == "smoke"
    for key in ("ceiling_ips", "throughput_ips", "ratio_to_ceiling"):
        _positive(report[key], key)
    for key in LATENCY_KEYS:
        _positive(report["alert_latency_ms"][key], f"alert_latency_ms.{key}")
        _positive(report["event_latency_ms"][key], f"event_latency_ms.{key}")
    for role in CLIENTS:
        _positive(report["peak_rss_mb"][role], f"peak_rss_mb.{role}")


def test_smoke_report_has_ceiling_stages_growth_half_load_and_scale_out(
    smoke_report: tuple[dict[str, Any], str],
) -> None:
    report, _ = smoke_report
    for stage in ("synthesize", "encode", "decode", "analyze", "total"):
        _positive(report["ceiling_cpu_ms_per_image"][stage], f"ceiling_cpu_ms_per_image.{stage}")
    assert len(report["growth"]) >= 2
    for row in report["growth"]:
        _positive(row["throughput_ips"], f"growth {row['size']} throughput_ips")
        _positive(row["analyzer_cpu_ms_per_image"], f"growth {row['size']} analyzer_cpu_ms_per_image")
    half = report["latency_half_max"]
    _positive(half["offered_ips"], "latency_half_max.offered_ips")
    for key in LATENCY_KEYS:
        _positive(half["event_latency_ms"][key], f"latency_half_max.event_latency_ms.{key}")
    for key in ("analyzers_1_ips", "analyzers_2_ips", "speedup"):
        _positive(report["scale_out"][key], f"scale_out.{key}")
    assert set(report["targets"]) == {
        "ratio_to_ceiling_at_least_0.8", "alert_p99_under_250_ms", "analyzer_rss_under_300_mb",
        "analyzer_cpu_640x480_at_most_2.5_ms", "analyzer_cpu_1920x1080_at_most_6_ms",
        "alert_p99_at_most_150_ms", "receiver_prerender_rss_at_most_200_mb",
    }
    for key in ("backlog", "paced"):
        _positive(report["cameras_per_core"][key], f"cameras_per_core.{key}")
    _positive(report["receiver_prerender_rss_mb"]["peak"], "receiver_prerender_rss_mb.peak")


def test_smoke_report_measures_camera_ingest(smoke_report: tuple[dict[str, Any], str]) -> None:
    cameras = smoke_report[0]["cameras"]
    if "skipped" in cameras:
        pytest.skip(cameras["skipped"])
    for run in cameras["runs"]:
        _positive(run["cpu_share_per_camera"], f"cameras {run['size']} cpu_share_per_camera")
        assert run["kept_fps_per_camera"] > 0 and run["streams_lost"] == 0, run
    assert "cameras/core" in smoke_report[1]


def test_smoke_table_prints_every_figure(smoke_report: tuple[dict[str, Any], str]) -> None:
    _, table = smoke_report
    for label in ("ceiling", "throughput", "ratio to ceiling", "capture -> alert file", "peak RSS", "growth",
                  "scale-out", "cameras per core", "prerendered frames", "targets"):
        assert label in table, f"{label!r} missing from the printed table"


def test_bench_cli_refuses_unknown_options() -> None:
    proc = subprocess.run([sys.executable, "-m", "devtools.bench", "--no-such-option"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--no-such-option" in proc.stderr


def test_module_is_documented() -> None:
    assert (Path(PROJECT_ROOT) / "docs" / "performance.md").is_file()
