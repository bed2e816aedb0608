"""Validate and decode image bytes by their content: magic bytes, header dimensions, full decode."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

from image_pipeline.config import LimitsConfig
from image_pipeline.errors import BadInputError

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ImageError(BadInputError):
    """Image bytes that are empty, not an allowed format, corrupt, or absurdly large."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind  # empty | too_large | unsupported | corrupt | bomb


@dataclass(frozen=True)
class ImageInfo:
    """What the header says before any pixel is decoded."""

    format: str  # "jpeg" | "png"
    width: int
    height: int


def sniff_format(data: bytes) -> str | None:
    """'jpeg' or 'png' from the magic bytes, else None."""
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    if data.startswith(PNG_MAGIC):
        return "png"
    return None


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageError("PNG header is truncated or lacks IHDR", "corrupt")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walk JPEG segments to the start-of-frame marker and read its dimensions."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ImageError("JPEG segment structure is corrupt", "corrupt")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return int(width), int(height)
        if length < 2:
            raise ImageError("JPEG segment length is invalid", "corrupt")
        pos += 2 + length
    raise ImageError("JPEG is truncated before its frame header", "corrupt")


def inspect(data: bytes, limits: LimitsConfig) -> ImageInfo:
    """Check size, format and header dimensions without decoding pixels."""
    if not data:
        raise ImageError("file is empty (0 bytes)", "empty")
    if len(data) > limits.max_image_bytes:
        raise ImageError(f"image is {len(data)} bytes; the limit is {limits.max_image_bytes}", "too_large")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError("not a JPEG or PNG image (unrecognised magic bytes)", "unsupported")
    width, height = _jpeg_size(data) if fmt == "jpeg" else _png_size(data)
    if width <= 0 or height <= 0:
        raise ImageError(f"{fmt} header declares {width}x{height} pixels", "corrupt")
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise ImageError(
            f"{fmt} declares {width}x{height} pixels, over the limit of {limits.max_pixels} "
            f"pixels or {limits.max_side} per side (decompression bomb?)",
            "bomb",
        )
    return ImageInfo(fmt, width, height)


def decode(data: bytes, limits: LimitsConfig, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Fully decode validated image bytes to a uint8 array; corrupt data raises ImageError."""
    return decode_scaled(data, limits, 1, flags)[0]


# JPEG decoders scale by 1/2, 1/4 or 1/8 inside the inverse DCT, so a reduced decode skips most of
# the work; every entropy-coded block is still read, so corrupt data is caught as in a full decode.
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def reduction_for(width: int, min_width: int | None) -> int:
    """The largest decode reduction (1, 2, 4 or 8) that keeps the image at least min_width wide."""
    if not min_width:
        return 1
    return next((f for f in (8, 4, 2) if -(-width // f) >= min_width), 1)


def decode_at_least(data: bytes, limits: LimitsConfig, min_width: int | None) -> tuple[np.ndarray, ImageInfo]:
    """Validate and decode as small as the format allows while staying min_width wide (None: full size)."""
    return decode_scaled(data, limits, reduction_for(inspect(data, limits).width, min_width))


def decode_scaled(data: bytes, limits: LimitsConfig, factor: int,
                  flags: int = cv2.IMREAD_COLOR) -> tuple[np.ndarray, ImageInfo]:
    """Validate and decode at 1/factor of the size (factor 1, 2, 4 or 8); returns the pixels and the header.

    The checks are those of a full decode: header, size limits, end-of-image marker, a decoder that
    accepts the data, and a decoded size that matches the header (scaled, rounded up as decoders do).
    """
    info = inspect(data, limits)
    if info.format == "jpeg" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise ImageError("JPEG is truncated (no end-of-image marker)", "corrupt")
    reduced = factor > 1 and flags == cv2.IMREAD_COLOR and info.format == "jpeg"  # PNG has no cheap reduction
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _REDUCED[factor] if reduced else flags)
    if image is None:
        raise ImageError(f"{info.format} data could not be decoded (corrupt)", "corrupt")
    scale = factor if reduced else 1
    if image.shape[1] != -(-info.width // scale) or image.shape[0] != -(-info.height // scale):
        raise ImageError("decoded size differs from the header (corrupt)", "corrupt")
    return image, info


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a uint8 image."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
