"""make bench: the pipeline's throughput, latency, memory, growth and scale-out against a real broker.

Every figure comes from one run, so ratios hold on a noisy machine: the in-memory ceiling (every
stage back to back in one process, one core), the end-to-end throughput of the real clients as
separate processes, capture-to-alert latency at a fixed offered load and at half the measured
maximum, peak RSS per client, cost by frame size, and 1 versus 2 analyzers on a backlog.
`--smoke` runs the same steps on tiny sizes; it checks that the benchmark works, not how fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.bench_cameras import FULL_CAMERAS, SMOKE_CAMERAS, format_cameras, measure_cameras
from devtools.bench_ceiling import STAGES, Ceiling, measure_ceiling
from devtools.bench_runs import RunResult, backlog_run, pipeline_run, summary
from image_pipeline import cli
from image_pipeline.config import Config
from image_pipeline.kafka import broker
from image_pipeline.sim.synthesis import load_backgrounds

TARGET_RATIO = 0.8
TARGET_P99_MS = 250.0
TARGET_ANALYZER_RSS_MB = 300.0
# The performance issue's targets: analyzer CPU per image, alert p99, the prerendering receiver's memory.
TARGET_ANALYZER_MS = {"640x480": 2.5, "1920x1080": 6.0}
TARGET_P99_FAST_MS = 150.0
TARGET_RECEIVER_RSS_MB = 200.0
CAMERA_FPS = 10.0  # cameras_per_core counts cameras at this rate


@dataclass(frozen=True)
class Plan:
    """Sizes and counts of one benchmark run."""

    main: tuple[int, int]
    sizes: tuple[tuple[int, int], ...]
    ceiling_images: int  # per size at 640x480; scaled by pixels for other sizes
    cameras: int
    frames: int  # throughput run at the main size; other sizes scale by pixels
    latency_cameras: int
    latency_fps: float
    latency_frames: int
    latency_half_s: float  # duration of the half-load run
    scale_cameras: int
    scale_frames: int


FULL = Plan(main=(640, 480), sizes=((320, 240), (640, 480), (1280, 720), (1920, 1080)), ceiling_images=160,
            cameras=4, frames=150, latency_cameras=10, latency_fps=10.0, latency_frames=200, latency_half_s=20.0,
            scale_cameras=16, scale_frames=75)
SMOKE = Plan(main=(320, 240), sizes=((160, 120), (320, 240)), ceiling_images=20,
             cameras=2, frames=60, latency_cameras=2, latency_fps=20.0, latency_frames=60, latency_half_s=3.0,
             scale_cameras=2, scale_frames=15)


def _log(text: str) -> None:
    print(f"[bench] {text}", flush=True)


def _scaled(count: int, size: tuple[int, int], main: tuple[int, int], floor: int) -> int:
    """Fewer images for bigger frames so every size takes a similar time."""
    return max(floor, round(count * main[0] * main[1] / (size[0] * size[1])))


def _ceiling(plan: Plan, size: tuple[int, int], cfg: Config, seed: int, backgrounds: list[Any]) -> Ceiling:
    cameras = 2
    frames = max(5, _scaled(plan.ceiling_images, size, plan.main, 10) // cameras)
    result = measure_ceiling(size, cameras, min(frames, 200), seed, backgrounds, cfg.receiver.jpeg_quality,
                             cfg.limits)
    _log(f"ceiling {size[0]}x{size[1]}: {result.ips:.1f} img/s, {result.cpu_ms['total']:.2f} CPU ms/image")
    return result


def _fit_exponent(pixels: list[float], cost: list[float]) -> float:
    """Least-squares slope of log(cost) on log(pixels): 1.0 means cost grows linearly with pixels."""
    xs, ys = [math.log(p) for p in pixels], [math.log(max(c, 1e-9)) for c in cost]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def run_bench(cfg: Config, plan: Plan, seed: int, workdir: Path) -> dict[str, Any]:
    """Every measurement of the benchmark, as the JSON report."""
    backgrounds = load_backgrounds(cfg.originals_dir)
    runs = iter(range(1, 100))

    def root() -> Path:
        return workdir / f"run-{next(runs):02d}"

    w, h = plan.main
    ceilings = {plan.main: _ceiling(plan, plan.main, cfg, seed, backgrounds)}
    _log(f"throughput run: {plan.cameras} cameras x {plan.frames} frames at {w}x{h}, --fps 0")
    main_run = pipeline_run(cfg, root(), plan.cameras, plan.frames, 0, plan.main, seed)
    _log(f"throughput {main_run.throughput_ips:.1f} img/s ({main_run.images} images)")
    # The ceiling once more after the pipeline run, so slow drift of the machine's load averages out.
    again = _ceiling(plan, plan.main, cfg, seed + 1, backgrounds)
    ceiling = ceilings[plan.main]
    ceiling_ips = (ceiling.ips + again.ips) / 2

    growth_runs: dict[tuple[int, int], RunResult] = {plan.main: main_run}
    for size in plan.sizes:
        if size not in ceilings:
            ceilings[size] = _ceiling(plan, size, cfg, seed, backgrounds)
        if size not in growth_runs:
            frames = min(plan.frames, _scaled(plan.frames, size, plan.main, 20))
            _log(f"growth run: {plan.cameras} cameras x {frames} frames at {size[0]}x{size[1]}")
            growth_runs[size] = pipeline_run(cfg, root(), plan.cameras, frames, 0, size, seed)
            _log(f"growth {size[0]}x{size[1]}: {growth_runs[size].throughput_ips:.1f} img/s")

    offered = plan.latency_cameras * plan.latency_fps
    _log(f"latency run: {plan.latency_cameras} cameras x {plan.latency_fps:g} fps ({offered:g} img/s offered)")
    fixed = pipeline_run(cfg, root(), plan.latency_cameras, plan.latency_frames, plan.latency_fps, plan.main, seed)
    half_cameras = plan.latency_cameras
    half_fps = max(0.5, main_run.throughput_ips / 2 / half_cameras)
    half_frames = max(30, round(half_fps * plan.latency_half_s))
    _log(f"latency run at half the maximum: {half_cameras} cameras x {half_fps:.2f} fps x {half_frames} frames")
    half = pipeline_run(cfg, root(), half_cameras, half_frames, half_fps, plan.main, seed)

    scale: dict[int, RunResult] = {}
    for analyzers in (1, 2):
        _log(f"scale-out: backlog of {plan.scale_cameras} cameras x {plan.scale_frames} frames, "
             f"{analyzers} analyzer(s)")
        scale[analyzers] = backlog_run(cfg, root(), analyzers, plan.scale_cameras, plan.scale_frames, plan.main, seed)
        _log(f"{analyzers} analyzer(s): {scale[analyzers].drain_ips:.1f} img/s")

    _log("cameras: receiver CPU to ingest RTSP H.264 streams (devtools/bench_cameras.py)")
    cameras = measure_cameras(cfg, workdir, SMOKE_CAMERAS if plan is SMOKE else FULL_CAMERAS, seed)

    rss: dict[str, float] = {}
    for run in (main_run, fixed, half):
        for role, mb in run.peak_rss_mb.items():
            rss[role] = max(rss.get(role, 0.0), mb)
    sizes = sorted(plan.sizes, key=lambda s: s[0] * s[1])
    pixels = [float(s[0] * s[1]) for s in sizes]
    growth = [{
        "size": f"{s[0]}x{s[1]}", "pixels": s[0] * s[1],
        "throughput_ips": round(growth_runs[s].throughput_ips, 2),
        "analyzer_cpu_ms_per_image": round(growth_runs[s].analyzer_cpu_ms, 3),
        "ceiling_ips": round(ceilings[s].ips, 2),
        "ceiling_cpu_ms_per_image": {k: round(v, 3) for k, v in ceilings[s].cpu_ms.items()},
    } for s in sizes]
    report: dict[str, Any] = {
        "mode": "smoke" if plan is SMOKE else "full",
        "size": f"{w}x{h}",
        "ceiling_ips": round(ceiling_ips, 2),
        "ceiling_cpu_ms_per_image": {k: round(v, 3) for k, v in ceiling.cpu_ms.items()},
        "ceiling_runs_ips": [round(ceiling.ips, 2), round(again.ips, 2)],
        "throughput_ips": round(main_run.throughput_ips, 2),
        "ratio_to_ceiling": round(main_run.throughput_ips / ceiling_ips, 3) if ceiling_ips else 0.0,
        "throughput_run": {
            "cameras": plan.cameras, "frames": plan.frames, "images": main_run.images,
            "receiver_cpu_ms_per_image": round(main_run.receiver_cpu_ms, 3),
            "analyzer_cpu_ms_per_image": round(main_run.analyzer_cpu_ms, 3),
            "accuracy": main_run.accuracy,
        },
        "alert_latency_ms": summary(fixed.alert_latency_ms),
        "event_latency_ms": summary(fixed.event_latency_ms),
        "latency_load": {"cameras": plan.latency_cameras, "fps": plan.latency_fps, "offered_ips": offered,
                         "announced_ips": round(fixed.offered_ips, 2), "images": fixed.images},
        "latency_half_max": {
            "cameras": half_cameras, "fps": round(half_fps, 3), "offered_ips": round(half_cameras * half_fps, 2),
            "announced_ips": round(half.offered_ips, 2), "images": half.images,
            "alert_latency_ms": summary(half.alert_latency_ms), "event_latency_ms": summary(half.event_latency_ms),
        },
        "peak_rss_mb": {role: round(rss.get(role, 0.0), 1) for role in ("receiver", "analyzer", "alerter")},
        "growth": growth,
        "growth_exponent": {
            "analyzer_cpu": round(_fit_exponent(pixels, [growth_runs[s].analyzer_cpu_ms for s in sizes]), 3),
            "ceiling_analyze_cpu": round(_fit_exponent(pixels, [ceilings[s].cpu_ms["analyze"] for s in sizes]), 3),
            "ceiling_total_cpu": round(_fit_exponent(pixels, [ceilings[s].cpu_ms["total"] for s in sizes]), 3),
        },
        "scale_out": {
            "partitions": 4, "images": scale[1].images,
            "analyzers_1_ips": round(scale[1].drain_ips, 2), "analyzers_2_ips": round(scale[2].drain_ips, 2),
            "speedup": round(scale[2].drain_ips / scale[1].drain_ips, 3) if scale[1].drain_ips else 0.0,
            "images_per_analyzer_2": scale[2].per_analyzer,
            "analyzer_cpu_ms_per_image_1": round(scale[1].analyzer_cpu_ms, 3),
            "analyzer_cpu_ms_per_image_2": round(scale[2].analyzer_cpu_ms, 3),
        },
        "cameras": cameras,
        # How many 640x480 cameras at 10 fps one analyzer core sustains, from its CPU per image.
        "cameras_per_core": {
            "fps": CAMERA_FPS,
            "backlog": _per_core(scale[1].analyzer_cpu_ms), "paced": _per_core(fixed.analyzer_cpu_ms),
            "analyzer_cpu_ms_per_image_backlog": round(scale[1].analyzer_cpu_ms, 3),
            "analyzer_cpu_ms_per_image_paced": round(fixed.analyzer_cpu_ms, 3),
        },
        "receiver_prerender_rss_mb": {"frames": fixed.images, "peak": round(fixed.peak_rss_mb.get("receiver", 0.0), 1)},
    }
    by_size = {f"{s[0]}x{s[1]}": growth_runs[s].analyzer_cpu_ms for s in sizes}
    report["targets"] = {
        **{f"analyzer_cpu_{s}_at_most_{ms:g}_ms": 0 < by_size.get(s, 0.0) <= ms
           for s, ms in TARGET_ANALYZER_MS.items()},
        "alert_p99_at_most_150_ms": 0 < report["alert_latency_ms"]["p99"] <= TARGET_P99_FAST_MS,
        "receiver_prerender_rss_at_most_200_mb":
            0 < report["receiver_prerender_rss_mb"]["peak"] <= TARGET_RECEIVER_RSS_MB,
        "ratio_to_ceiling_at_least_0.8": report["ratio_to_ceiling"] >= TARGET_RATIO,
        "alert_p99_under_250_ms": 0 < report["alert_latency_ms"]["p99"] < TARGET_P99_MS,
        "analyzer_rss_under_300_mb": 0 < report["peak_rss_mb"]["analyzer"] < TARGET_ANALYZER_RSS_MB,
    }
    return report


def format_table(r: dict[str, Any]) -> str:
    """The report as the text table make bench prints."""
    c = r["ceiling_cpu_ms_per_image"]
    lat, half, so, t = r["latency_load"], r["latency_half_max"], r["scale_out"], r["targets"]
    tr = r["throughput_run"]
    cpc = r["cameras_per_core"]

    def pcts(d: dict[str, Any]) -> str:
        return f"p50 {d['p50']:7.1f}  p95 {d['p95']:7.1f}  p99 {d['p99']:7.1f}  max {d['max']:7.1f}  (n={d['n']})"

    lines = [
        f"== image pipeline benchmark ({r['mode']}, {r['size']}, {r['machine']['cpus']} CPUs, "
        f"load {r['machine']['loadavg_start']})",
        f"ceiling (1 process, in memory)   {r['ceiling_ips']:8.1f} img/s   (runs: "
        + ", ".join(f"{v:.1f}" for v in r["ceiling_runs_ips"]) + ")",
        "  CPU ms/image                   " + "  ".join(f"{k} {c[k]:.2f}" for k in (*STAGES, "total")),
        f"throughput (processes + Kafka)   {r['throughput_ips']:8.1f} img/s   ratio to ceiling "
        f"{r['ratio_to_ceiling']:.2f}   ({tr['images']} images)",
        f"  CPU ms/image                   receiver {tr['receiver_cpu_ms_per_image']:.2f}  "
        f"analyzer {tr['analyzer_cpu_ms_per_image']:.2f}",
        f"latency at {lat['offered_ips']:g} img/s offered ({lat['cameras']} cameras x {lat['fps']:g} fps; "
        f"announced {lat['announced_ips']:.1f} img/s)",
        f"  capture -> event file  ms      {pcts(r['event_latency_ms'])}",
        f"  capture -> alert file  ms      {pcts(r['alert_latency_ms'])}",
        f"latency at half the maximum ({half['offered_ips']:.1f} img/s offered; announced {half['announced_ips']:.1f})",
        f"  capture -> event file  ms      {pcts(half['event_latency_ms'])}",
        f"  capture -> alert file  ms      {pcts(half['alert_latency_ms'])}",
        "peak RSS MB                      " + "  ".join(f"{k} {v:.1f}" for k, v in r["peak_rss_mb"].items()),
        "growth      size   throughput img/s   analyzer CPU ms/img   ceiling img/s   ceiling analyze ms",
    ]
    for g in r["growth"]:
        lines.append(f"  {g['size']:>14} {g['throughput_ips']:18.1f} {g['analyzer_cpu_ms_per_image']:21.2f} "
                     f"{g['ceiling_ips']:15.1f} {g['ceiling_cpu_ms_per_image']['analyze']:20.2f}")
    e = r["growth_exponent"]
    lines += [
        f"  cost ~ pixels^k: analyzer CPU k={e['analyzer_cpu']:.2f}, "
        f"in-memory analyze k={e['ceiling_analyze_cpu']:.2f}, all stages k={e['ceiling_total_cpu']:.2f}",
        f"scale-out (backlog of {so['images']}, {so['partitions']} partitions)  1 analyzer {so['analyzers_1_ips']:.1f} "
        f"img/s   2 analyzers {so['analyzers_2_ips']:.1f} img/s   speedup {so['speedup']:.2f}  "
        f"(split {so['images_per_analyzer_2']})",
        *format_cameras(r["cameras"]),
        f"cameras per core (640x480 at {cpc['fps']:g} fps)   backlog {cpc['backlog']:.1f} "
        f"({cpc['analyzer_cpu_ms_per_image_backlog']:.2f} ms/img)   paced {cpc['paced']:.1f} "
        f"({cpc['analyzer_cpu_ms_per_image_paced']:.2f} ms/img)",
        f"receiver peak RSS with {r['receiver_prerender_rss_mb']['frames']} prerendered frames   "
        f"{r['receiver_prerender_rss_mb']['peak']:.1f} MB",
        "targets (performance issue): " + "   ".join(
            f"{k}: {_ok(v)}" for k, v in t.items() if k.startswith(("analyzer_cpu_", "alert_p99_at", "receiver_"))),
        f"targets: ratio >= {TARGET_RATIO}: {_ok(t['ratio_to_ceiling_at_least_0.8'])}   "
        f"alert p99 < {TARGET_P99_MS:g} ms: {_ok(t['alert_p99_under_250_ms'])}   "
        f"analyzer RSS < {TARGET_ANALYZER_RSS_MB:g} MB: {_ok(t['analyzer_rss_under_300_mb'])}",
    ]
    return "\n".join(lines)


def _per_core(cpu_ms_per_image: float) -> float:
    """Cameras at CAMERA_FPS that one core's worth of analyzer CPU keeps up with."""
    return round(1000.0 / (cpu_ms_per_image * CAMERA_FPS), 1) if cpu_ms_per_image > 0 else 0.0


def _ok(flag: bool) -> str:
    return "met" if flag else "MISSED"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The benchmark's options."""
    parser = cli.base_parser("python -m devtools.bench", "Benchmark the pipeline against a real broker.")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that it works, not how fast")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the run folders (data and client logs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of python -m devtools.bench (make bench)."""
    args = parse_args(argv)
    cli.setup_logging("WARNING")
    return cli.run_main("bench", lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    cfg = cli.load_from_args(args)
    started: broker.Instance | None = None
    if args.bootstrap_servers is None:
        started = broker.instance_for(broker.free_port())
        _log(f"starting a broker on {started.bootstrap} (log: {started.log_file})")
        broker.start(started, fresh=True)
        cfg = cfg.with_overrides(bootstrap_servers=started.bootstrap)
    workdir = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    began = time.monotonic()
    try:
        machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
                   "loadavg_start": " ".join(f"{v:.2f}" for v in os.getloadavg())}
        report = run_bench(cfg, SMOKE if args.smoke else FULL, args.seed, workdir)
        machine["loadavg_end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
        report = {"machine": machine, **report, "duration_s": round(time.monotonic() - began, 1)}
    finally:
        if started is not None:
            broker.stop_and_purge(started)
        if args.keep:
            _log(f"run folders kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(format_table(report), flush=True)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        _log(f"wrote {out} in {report['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
