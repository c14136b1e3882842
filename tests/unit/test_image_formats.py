"""Images are never processed (``core/images.py``, decision 56): every image format a payload's
string may hold, as base64 (standard or URL-safe) or a ``data:`` URI, is recognised — and the
near misses (magic bytes off by one, a string one character too short, base64 of something
else) are not. The edge's refusal of a payload holding one: tests/unit/test_edge_privacy.py."""

from __future__ import annotations

import base64
import json

import pytest
from unit_support import normalized, senml_reading

from citypipe.core.images import (
    IMAGE_HINT,
    IMAGE_HINT_TEXT,
    MIN_IMAGE_CHARS,
    image_path,
    looks_like_image,
)
from citypipe.domain.city import City
from citypipe.domain.limits import MAX_DEPTH

FILLER = bytes(range(1, 256)) * 2


def encoded(head: bytes, chars: int = 200, urlsafe: bool = False) -> str:
    """Base64 of ``head`` and filler bytes, cut to ``chars`` characters."""
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(head + FILLER).decode()[:chars]


IMAGES = {
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "jpeg-exif": b"\xff\xd8\xff\xe1\x00\x18Exif\x00",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "gif87a": b"GIF87a\x10\x00\x10\x00",
    "gif89a": b"GIF89a\x10\x00\x10\x00",
    "bmp": b"BM\x36\x0c\x00\x00\x00\x00\x00\x00\x36\x00",
    "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "avi": b"RIFF\x24\x00\x00\x00AVI LIST",
    "wave": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "tiff-little-endian": b"II*\x00\x08\x00\x00\x00",
    "tiff-big-endian": b"MM\x00*\x00\x00\x00\x08",
    "heic": b"\x00\x00\x00\x18ftypheic",
    "avif": b"\x00\x00\x00\x1cftypavif",
    "mp4": b"\x00\x00\x00\x20ftypisom",
}

NEAR_MISSES = {
    "jpeg-third-byte-off-by-one": b"\xff\xd8\xfe\xe0\x00\x10JFIF\x00",
    "jpeg-first-byte-off-by-one": b"\xfe\xd8\xff\xe0\x00\x10JFIF\x00",
    "png-last-magic-byte-off-by-one": b"\x89PNG\r\n\x1a\x0b\x00\x00\x00\rIHDR",
    "png-first-byte-off-by-one": b"\x88PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "gif88a": b"GIF88a\x10\x00\x10\x00",
    "bmp-reserved-byte-6-set": b"BM\x36\x0c\x00\x00\x01\x00\x00\x00\x36\x00",
    "bmp-reserved-byte-9-set": b"BM\x36\x0c\x00\x00\x00\x00\x00\x01\x36\x00",
    "bm-lower-case": b"bM\x36\x0c\x00\x00\x00\x00\x00\x00\x36\x00",
    "riff-webq": b"RIFF\x24\x00\x00\x00WEBQVP8 ",
    "riff-webp-a-byte-late": b"RIFF\x24\x00\x00\x00\x00WEBPVP8",
    "riff-lower-case": b"RIFf\x24\x00\x00\x00WEBPVP8 ",
    "tiff-ii-star-one": b"II*\x01\x08\x00\x00\x00",
    "tiff-mm-zero-plus": b"MM\x00+\x00\x00\x00\x08",
    "ftyp-a-byte-late": b"\x00\x00\x00\x00\x18ftypheic",
    "ftyp-a-byte-early": b"\x00\x00\x18ftypheic\x00",
    "ftyq": b"\x00\x00\x00\x18ftyqheic",
    "text": b"temperature,humidity,pressure\n21.5,40,1013\n",
    "zeros": bytes(48),
}


@pytest.mark.parametrize("head", IMAGES.values(), ids=IMAGES.keys())
def test_base64_of_every_image_format_is_an_image(head: bytes) -> None:
    assert looks_like_image(encoded(head))


@pytest.mark.parametrize("head", IMAGES.values(), ids=IMAGES.keys())
def test_url_safe_base64_of_every_image_format_is_an_image(head: bytes) -> None:
    assert looks_like_image(encoded(head, urlsafe=True))


def test_url_safe_base64_whose_head_standard_base64_cannot_read_is_an_image() -> None:
    text = encoded(IMAGES["jpeg"], urlsafe=True)
    assert text.startswith("_9j_")  # '_' is no standard base64
    assert looks_like_image(text)


@pytest.mark.parametrize("head", IMAGES.values(), ids=IMAGES.keys())
def test_base64_with_its_slashes_escaped_as_json_escapes_them_is_an_image(head: bytes) -> None:
    # a string that holds JSON's escaping (a CSV cell, a JSON document sent as a string):
    # each \/ is one slash, read before the head is cut
    for text in (encoded(head), encoded(bytes(3) + head)):  # shifted: other slashes
        escaped = text.replace("/", "\\/")
        assert looks_like_image(escaped) == looks_like_image(text)
    jpeg = encoded(IMAGES["jpeg"]).replace("/", "\\/")
    assert jpeg.startswith("\\/9j\\/") and looks_like_image(jpeg)
    assert image_path({"camera": jpeg}) == "camera"


def test_a_head_of_escaped_slashes_only_is_read_whole() -> None:
    # 24 slashes, each escaped: 48 characters to read for the 24 the head decodes
    assert not looks_like_image("\\/" * 24 + "A" * 40)
    assert looks_like_image("\\/9j\\/" + encoded(IMAGES["jpeg"])[4:])


@pytest.mark.parametrize(
    "text",
    [
        "/9j/ starts the base64 of every JPEG: this sentence is text, not an image at all",
        "/9j/ is how base64 JPEGs start: this sentence is text, not an image at all, really",
    ],
)
def test_text_that_starts_like_an_image_is_read_as_written_not_leniently(text: str) -> None:
    # base64 that skipped what it cannot read (the spaces) would take these for a JPEG
    assert base64.b64decode(text[:24].encode(), validate=False).startswith(b"\xff\xd8\xff")
    assert not looks_like_image(text)


@pytest.mark.parametrize("head", NEAR_MISSES.values(), ids=NEAR_MISSES.keys())
def test_base64_of_magic_bytes_off_by_one_is_no_image(head: bytes) -> None:
    assert not looks_like_image(encoded(head))
    assert not looks_like_image(encoded(head, urlsafe=True))


@pytest.mark.parametrize("head", IMAGES.values(), ids=IMAGES.keys())
def test_an_image_string_just_long_enough_is_an_image_one_shorter_is_not(head: bytes) -> None:
    assert MIN_IMAGE_CHARS == 64
    assert looks_like_image(encoded(head, chars=64))
    assert not looks_like_image(encoded(head, chars=63))


@pytest.mark.parametrize(
    "uri",
    [
        "data:image/png;base64,",
        "data:image/jpeg;base64,",
        "DATA:IMAGE/PNG;BASE64,",
        "Data:Image/svg+xml,",
        "data:image/",
    ],
)
def test_a_data_uri_of_an_image_is_an_image_from_64_characters(uri: str) -> None:
    text = uri + "x" * 100
    assert looks_like_image(text[:64])
    assert not looks_like_image(text[:63])


@pytest.mark.parametrize(
    "text",
    [
        "data:imag/png;base64," + "A" * 60,
        "data:text/plain;base64," + "A" * 60,
        " data:image/png;base64," + "A" * 60,
        "image/png;base64," + "A" * 60,
    ],
)
def test_a_uri_that_is_not_data_image_is_no_image(text: str) -> None:
    assert not looks_like_image(text)


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(bytes(range(7, 250))).decode(),  # base64 of no image
        "!!!!" + encoded(IMAGES["png"])[4:],  # no base64 at its head
        "x" * 200,
        "iVBORw0KGgo" + "!" * 60,  # a PNG's first characters, then no base64
    ],
    ids=["base64-of-no-image", "not-base64-at-the-head", "letters", "png-start-then-garbage"],
)
def test_a_long_string_that_holds_no_image_is_none(text: str) -> None:
    assert not looks_like_image(text)


# --- where in a payload -----------------------------------------------------------------------

PNG = encoded(IMAGES["png"])


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (PNG, ""),
        ([21.5, PNG], "[1]"),
        ({"image": PNG}, "image"),
        ({"a": {"b": [1, {"c": PNG}]}}, "a.b[1].c"),
        ({"a": [[0, [PNG]]]}, "a[0][1][0]"),
        ({"first": "x" * 80, "second": PNG, "third": PNG}, "second"),
        ({"n": "no2", "v": 21.5, "vs": "fine"}, None),
        ({"deep": [[{"x": 1}]], "count": 3, "flag": True, "none": None}, None),
    ],
    ids=["root", "array", "field", "nested", "arrays", "first-of-two", "none", "no-string"],
)
def test_the_path_of_the_first_string_holding_an_image(document: object, path: str | None) -> None:
    assert image_path(document) == path


def nested(depth: int, leaf: object) -> object:
    """``leaf`` under ``depth`` levels of arrays."""
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def test_an_image_is_found_down_to_the_deepest_level_a_payload_may_have() -> None:
    assert image_path(nested(MAX_DEPTH - 1, PNG)) == "[0]" * (MAX_DEPTH - 1)
    # deeper than any payload is accepted (the edge refuses those for their depth)
    assert image_path(nested(MAX_DEPTH, PNG)) is None


# --- the cheap look at the raw body ------------------------------------------------------------


@pytest.mark.parametrize("head", IMAGES.values(), ids=IMAGES.keys())
def test_the_raw_body_of_a_payload_holding_any_image_hints_at_one(head: bytes) -> None:
    for text in (encoded(head), encoded(head, urlsafe=True)):
        body = json.dumps({"v": text})
        assert IMAGE_HINT.search(body.encode()) is not None
        assert IMAGE_HINT.search(body.replace("/", "\\/").encode()) is not None
        assert IMAGE_HINT_TEXT.search(body) is not None
        assert IMAGE_HINT_TEXT.search(body.replace("/", "\\/")) is not None


def test_the_raw_body_of_a_payload_holding_a_data_uri_hints_at_one() -> None:
    body = json.dumps({"v": "data:image/png;base64," + PNG})
    assert IMAGE_HINT.search(body.encode()) is not None
    assert IMAGE_HINT_TEXT.search(body) is not None


def test_the_raw_body_of_a_plain_reading_hints_at_no_image() -> None:
    body = json.dumps(senml_reading(name="no2", value=21.5, vs="a plain string value"))
    assert IMAGE_HINT.search(body.encode()) is None
    assert IMAGE_HINT_TEXT.search(body) is None


@pytest.mark.parametrize("name", IMAGES.keys())
def test_a_payload_holding_any_image_format_is_refused_at_the_edge(city: City, name: str) -> None:
    result = normalized(
        city, "senml", senml_reading(name="no2", value=None, vs=encoded(IMAGES[name]))
    )
    assert (result.accepted, dict(result.reasons)) == (0, {"image_refused": 1})
    assert encoded(IMAGES[name])[:24] not in json.dumps(result.quarantine)
