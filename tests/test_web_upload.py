"""POST /upload with the Flask test client against the real broker: every status code and the error topic."""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from image_pipeline.config import Config
from image_pipeline.messages import ImageMessage, UploadError
from image_pipeline.web import create_app
from tests.web_support import image_bytes, json_body, read_topic

pytestmark = pytest.mark.kafka


def post_image(
    client: FlaskClient, data: bytes, filename: str = "photo.jpg", camera_id: str | None = None
) -> TestResponse:
    """POST one file as multipart field `image`."""
    form: dict[str, object] = {"image": (io.BytesIO(data), filename)}
    if camera_id is not None:
        form["camera_id"] = camera_id
    return client.post("/upload", data=form, content_type="multipart/form-data")


def errors_on_topic(cfg: Config, expect: int = 1) -> list[UploadError]:
    """The UploadError records on this test's error topic."""
    return [UploadError.from_dict(v) for v in read_topic(cfg, cfg.topics.errors.name, expect)]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares a huge image (a decompression-bomb shape), without the pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_jpeg_upload_is_stored_and_announced(client: FlaskClient, pipeline_config: Config) -> None:
    data = image_bytes("jpg", 64, 48)
    response = post_image(client, data, camera_id="cam-07")
    assert response.status_code == 201, response.json
    body = json_body(response)
    assert body["image_id"] == "cam-07-00000000"
    assert body["path"] == "cam-07/cam-07-00000000.jpg"
    assert (pipeline_config.images_dir / body["path"]).read_bytes() == data
    [value] = read_topic(pipeline_config, pipeline_config.topics.images.name, 1)
    message = ImageMessage.from_dict(value)
    assert (message.image_id, message.source, message.width, message.height) == (body["image_id"], "upload", 64, 48)
    assert message.path == body["path"]


def test_png_keeps_its_bytes_and_extension_and_seq_counts_up(client: FlaskClient, pipeline_config: Config) -> None:
    data = image_bytes("png", 32, 32)
    first = post_image(client, data, filename="x.png")
    second = post_image(client, data, filename="x.png")
    assert first.status_code == second.status_code == 201
    assert json_body(first)["camera_id"] == "upload"
    assert json_body(first)["path"].endswith(".png")
    assert json_body(second)["seq"] == json_body(first)["seq"] + 1
    assert (pipeline_config.images_dir / json_body(second)["path"]).read_bytes() == data


def test_seq_continues_after_images_already_stored(pipeline_config: Config) -> None:
    folder = pipeline_config.images_dir / "cam-02"
    folder.mkdir(parents=True)
    (folder / "cam-02-00000041.jpg").write_bytes(image_bytes())
    (folder / "cam-02-00000041.thumb.jpg").write_bytes(image_bytes())
    app = create_app(pipeline_config, testing=True)
    try:
        response = post_image(app.test_client(), image_bytes(), camera_id="cam-02")
    finally:
        app.extensions["image_pipeline"].close()
    assert json_body(response)["image_id"] == "cam-02-00000042"


def test_file_name_never_decides_the_storage_path(client: FlaskClient, pipeline_config: Config) -> None:
    response = post_image(client, image_bytes("jpg"), filename="../../../etc/evil.png")
    assert response.status_code == 201
    assert json_body(response)["path"] == "upload/upload-00000000.jpg"
    stored = [p for p in pipeline_config.data_dir.rglob("*") if p.is_file()]
    assert stored == [pipeline_config.images_dir / "upload" / "upload-00000000.jpg"]


@pytest.mark.parametrize(
    ("name", "data", "filename", "status", "words"),
    [
        ("empty", b"", "photo.jpg", 400, "empty"),
        ("corrupt", image_bytes("jpg", 64, 48)[:300], "photo.jpg", 400, "truncated"),
        ("garbage-after-magic", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "photo.png", 400, "PNG"),
        ("text-named-jpg", b"hello, I am not an image\n" * 4, "photo.jpg", 415, "not a JPEG or PNG"),
        ("gif", b"GIF89a" + b"\x00" * 50, "anim.gif", 415, "not a JPEG or PNG"),
        ("bomb", png_header_only(60_000, 60_000), "bomb.png", 413, "decompression bomb"),
    ],
)
def test_bad_image_gets_4xx_and_lands_on_error_topic(
    client: FlaskClient, pipeline_config: Config, name: str, data: bytes, filename: str, status: int, words: str,
) -> None:
    response = post_image(client, data, filename=filename)
    assert response.status_code == status, (name, response.json)
    assert words in json_body(response)["error"]
    [record] = errors_on_topic(pipeline_config)
    assert (record.status, record.filename, record.size) == (status, filename, len(data))
    assert words in record.error
    assert not any(p.is_file() for p in pipeline_config.images_dir.rglob("*")), "nothing may be stored"


def test_missing_field_is_400(client: FlaskClient, pipeline_config: Config) -> None:
    response = client.post("/upload", data={"camera_id": "cam-01"}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "image" in json_body(response)["error"]
    assert errors_on_topic(pipeline_config)[0].status == 400


def test_invalid_camera_id_is_400(client: FlaskClient, pipeline_config: Config) -> None:
    response = post_image(client, image_bytes(), camera_id="../../etc")
    assert response.status_code == 400
    assert "camera_id" in json_body(response)["error"]
    assert errors_on_topic(pipeline_config)[0].camera_id == "../../etc"
    assert not (pipeline_config.data_dir.parent / "etc").exists()


def test_body_over_the_cap_is_413_before_reading(pipeline_config: Config) -> None:
    cfg = pipeline_config.replace(web=dataclasses.replace(pipeline_config.web, max_upload_bytes=2_000))
    app = create_app(cfg, testing=True)
    try:
        response = post_image(app.test_client(), image_bytes("png", 200, 200), filename="big.png")
    finally:
        app.extensions["image_pipeline"].close()
    assert response.status_code == 413
    assert "larger than the limit of 2000 bytes" in json_body(response)["error"]
    [record] = errors_on_topic(cfg)
    assert record.status == 413 and record.size > 2_000


def test_image_over_the_image_byte_limit_is_413(pipeline_config: Config) -> None:
    cfg = pipeline_config.replace(limits=dataclasses.replace(pipeline_config.limits, max_image_bytes=500))
    app = create_app(cfg, testing=True)
    try:
        response = post_image(app.test_client(), image_bytes("png", 64, 64))
    finally:
        app.extensions["image_pipeline"].close()
    assert response.status_code == 413
    assert "the limit is 500" in json_body(response)["error"]
    assert errors_on_topic(cfg)[0].status == 413


def test_kafka_down_is_503_and_nothing_stays_stored(pipeline_config: Config) -> None:
    from image_pipeline.kafka.broker import free_port

    dead = pipeline_config.with_overrides(bootstrap_servers=f"127.0.0.1:{free_port()}")
    app = create_app(dead, testing=True)
    try:
        response = post_image(app.test_client(), image_bytes())
    finally:
        app.extensions["image_pipeline"].close()
    assert response.status_code == 503
    assert "Kafka" in json_body(response)["error"]
    assert not any(p.is_file() for p in dead.images_dir.rglob("*"))
