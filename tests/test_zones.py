"""Motion masks and zones: a walker in a mask raises nothing; a zoned subscription is alerted only in its zone."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from image_pipeline.config import Config, ConfigError, LimitsConfig, Subscription, load_config
from image_pipeline.messages import EventMessage
from image_pipeline.stages.alerting import AlertStep, event_decoder
from image_pipeline.stages.analysis import AnalysisStep, Frame
from image_pipeline.stages.step import Outputs, Source
from image_pipeline.vision.imaging import decode_at_least, encode_jpeg
from image_pipeline.vision.masking import MotionMask, draw_areas
from image_pipeline.zones import CameraAreas, ZoneConfig, foot_point, inside, zones_hit

CAMERA = "cam-z"
SIZE = (320, 240)
LOWER_HALF = ((0, 110), (320, 110), (320, 240), (0, 240))  # where the walker walks
DOOR = ZoneConfig("door", ((150, 150), (320, 150), (320, 240), (150, 240)))  # right of the path: feet pass
GATE = ZoneConfig("gate", ((0, 0), (100, 0), (100, 60), (0, 60)))  # top left: nobody walks there


def walker_frames(frames: int = 50) -> list[Frame]:
    """A still textured view, then a dark 16x44 figure walking left to right along the lower half."""
    rng = np.random.default_rng(21)
    view = cv2.resize(rng.integers(70, 190, (30, 40, 3), dtype=np.uint8), SIZE, interpolation=cv2.INTER_CUBIC)
    out = []
    for seq in range(frames):
        image = view.copy()
        if seq >= 10:
            x = 10 + (seq - 10) * 7
            image[150:194, x:x + 16] = 25
        data = encode_jpeg(image, 90)
        decoded, info = decode_at_least(data, LimitsConfig(), 160)
        out.append(Frame(CAMERA, f"{CAMERA}-{seq:08d}", seq, 1000.0 + seq / 10, decoded, (info.width, info.height),
                         data))
    return out


def run_chain(cfg: Config) -> list[Outputs]:
    """Analyse the walker, write the outputs as the runner would, and let the alerter see every event."""
    step, alerter, decode = AnalysisStep(cfg), AlertStep(cfg, clock=lambda: 2000.0), event_decoder(cfg)
    alerts = []
    for i, frame in enumerate(walker_frames()):
        source = Source("images", 0, i)
        if step.needs_replay(frame):
            step.start_replay(frame, source)
        out = step.apply(frame, source)
        for write in out.writes:
            write.path.parent.mkdir(parents=True, exist_ok=True)
            write.path.write_bytes(write.data)
        for send in out.sends:
            if EventMessage.decode(send.value).event_type == "intrusion":
                alerted = alerter.apply(decode(send.value), None)
                for write in alerted.writes:
                    write.path.parent.mkdir(parents=True, exist_ok=True)
                    write.path.write_bytes(write.data)
                alerts.append(alerted)
    return alerts


def configured(tmp_path: Path, mask: tuple[tuple[tuple[int, ...], ...], ...], *subs: Subscription) -> Config:
    cfg = load_config().with_overrides(data_dir=str(tmp_path))
    return dataclasses.replace(cfg, areas=(CameraAreas(CAMERA, mask, (DOOR, GATE)),), subscriptions=subs)


def alertees(alerts: list[Outputs]) -> set[str]:
    return {a["name"] for out in alerts for w in out.writes if w.path.suffix == ".json"
            for a in json.loads(w.data)["alertees"]}


def test_an_intrusion_inside_the_mask_raises_nothing(tmp_path: Path) -> None:
    alerts = run_chain(configured(tmp_path, (LOWER_HALF,), Subscription("anyone")))
    assert alerts == [], "nothing moving inside a motion mask is an event"


def test_an_intrusion_inside_the_named_zone_alerts(tmp_path: Path) -> None:
    door = configured(tmp_path, (), Subscription("door-watch", zones=("door",)),
                      Subscription("gate-watch", zones=("gate",)))
    alerts = run_chain(door)
    assert alerts, "the walker outside any mask is an intrusion"
    # The episode starts left of the door (nobody alerted yet); an update once its feet are in the door alerts.
    assert alertees(alerts) == {"door-watch"}


def test_an_intrusion_outside_the_named_zone_alerts_nobody(tmp_path: Path) -> None:
    gate_only = configured(tmp_path, (), Subscription("gate-watch", zones=("gate",)))
    alerts = run_chain(gate_only)
    assert alerts and alertees(alerts) == set()
    assert not list((tmp_path / "image_event_alerts").glob("*.json"))


def test_geometry_foot_points_and_polygons() -> None:
    assert foot_point((10, 20, 6, 30)) == (13.0, 50.0)
    assert inside((200, 200), DOOR.points) and not inside((100, 200), DOOR.points)
    areas = (CameraAreas(CAMERA, (), (DOOR, GATE)),)
    assert zones_hit(areas, CAMERA, [(190, 100, 20, 80)]) == {"door"}  # feet at y 180, inside the door
    assert zones_hit(areas, CAMERA, [(190, 100, 20, 20)]) == frozenset()  # only the head is over the door
    assert zones_hit(areas, "other", [(190, 100, 20, 80)]) == frozenset()


def test_mask_scales_to_a_reduced_decode_and_areas_are_drawn() -> None:
    frame = np.full((120, 160, 3), 200, np.uint8)
    painted = MotionMask((LOWER_HALF,)).paint(frame, SIZE)
    assert painted[100, 80].tolist() == [0, 0, 0] and painted[20, 80].tolist() == [200, 200, 200]
    assert frame[100, 80].tolist() == [200, 200, 200], "the decoded frame itself is left as it is"
    drawn = draw_areas(np.full((240, 320, 3), 200, np.uint8), CameraAreas(CAMERA, (LOWER_HALF,), (DOOR,)))
    assert drawn[200, 20].tolist() != [200, 200, 200] and drawn[150, 200].tolist() != [200, 200, 200]


def test_config_rejects_an_unknown_zone_and_a_bad_polygon(tmp_path: Path) -> None:
    base = (Path(__file__).resolve().parent.parent / "config.yaml").read_text(encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(base + "\nareas:\n  - camera: cam-01\n    zones:\n      - name: door\n"
                    "        points: [[0, 0], [10, 0], [10, 10]]\n", encoding="utf-8")
    assert load_config(path, env={}).areas[0].zones[0].name == "door"
    path.write_text(base + "\nareas:\n  - camera: cam-01\n    mask: [[[0, 0], [10, 0]]]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"areas\[0\]\.mask\[0\]: a polygon needs 3"):
        load_config(path, env={})
    cfg = load_config(env={})
    with pytest.raises(ConfigError, match=r"subscriptions\[0\]\.zones: no camera has a zone 'porch'"):
        from image_pipeline.config_checks import validate as _validate
        _validate(dataclasses.replace(cfg, subscriptions=(Subscription("x", zones=("porch",)),)))
