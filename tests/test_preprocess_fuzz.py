"""Fuzzing `k2m preprocess` with corrupted inputs: never a crash or a traceback, never a partial
dataset — exit 0 with a valid file, or exit 2 with no file."""

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_preprocess_support import cli

from k2m_core.preprocess.formats import (
    write_coco_results, write_k2m_jsonl, write_mmpose_json, write_openpose_folder, write_pose_npz)
from k2m_core.preprocess.procedural import walking_figure
from k2m_core.preprocess.validate import validate_dataset

FRAMES = 66


def _valid_files(root: Path) -> dict[str, bytes]:
    """One clean input per format, as {relative path: bytes}."""
    xy, conf = walking_figure(FRAMES, seed=4)
    write_coco_results(root / "coco.json", xy, conf)
    write_mmpose_json(root / "mm.json", xy, conf, layout="instance_info")
    write_pose_npz(root / "arr.npz", xy, conf, fps=30, width=1280, height=720)
    write_k2m_jsonl(root / "rec.jsonl", [{"video": "rec", "xy": xy, "conf": conf, "fps": 30, "width": 1280,
                                          "height": 720}])
    write_openpose_folder(root / "op", xy, conf, video_id="op")
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    return _valid_files(tmp_path_factory.mktemp("valid"))


CAPTIONS = "".join(json.dumps({"video": v, "captions": ["a person walks"]}) + "\n"
                   for v in ("coco", "mm", "arr", "rec", "op", "good")).encode()
NUMBER_SWAPS = [b"NaN", b"Infinity", b"-1", b"2.5", b"1e400", b"null", b'"x"', b"[]", b"{}", b""]


@st.composite
def corruption(draw, names):
    name = draw(st.sampled_from(names))
    kind = draw(st.sampled_from(["truncate", "flip", "swap-number", "empty", "append", "drop-key", "captions"]))
    return name, kind, draw(st.integers(0, 10 ** 9)), draw(st.binary(min_size=1, max_size=8)), \
        draw(st.sampled_from(NUMBER_SWAPS)), draw(st.booleans())


def corrupt(data: bytes, kind: str, seed: int, junk: bytes, swap: bytes) -> bytes:
    rng = np.random.default_rng(seed)
    if kind == "truncate":
        return data[:int(rng.integers(0, max(len(data), 1)))]
    if kind == "flip":
        out = bytearray(data)
        for at in rng.integers(0, max(len(out), 1), size=min(len(junk), len(out))):
            out[at] = junk[int(at) % len(junk)]
        return bytes(out)
    if kind == "swap-number":
        numeric = set(b"0123456789.-e")
        numbers = [i for i, ch in enumerate(data) if 48 <= ch <= 57 and (i == 0 or data[i - 1] not in numeric)] or [0]
        at = numbers[int(rng.integers(len(numbers)))]
        end = at
        while end < len(data) and (48 <= data[end] <= 57 or data[end] in b".-e"):
            end += 1
        return data[:at] + swap + data[end:]
    if kind == "empty":
        return b""
    if kind == "append":
        return data + junk
    if kind == "drop-key":
        for key in (b'"keypoints"', b'"image_id"', b'"frame_id"', b'"people"', b'"fps"', b'"video"', b'"instances"'):
            data = data.replace(key, b'"k' + junk.hex().encode() + b'"', 1) if rng.random() < 0.5 else data
        return data
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_inputs_never_crash_or_leave_a_partial_dataset(capsys, valid_files, data):
    name, kind, seed, junk, swap, strict = data.draw(corruption(sorted(valid_files)))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, content in valid_files.items():
            path = root / "in" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(corrupt(content, kind, seed, junk, swap) if rel == name else content)
        xy, conf = walking_figure(FRAMES, seed=9)
        write_pose_npz(root / "in" / "good.npz", xy, conf, fps=30, width=1280, height=720)
        captions = root / "captions.jsonl"
        captions.write_bytes(corrupt(CAPTIONS, "flip", seed, junk, swap) if kind == "captions" else CAPTIONS)
        out = root / "out" / "d.h5"
        args = ["-q", "preprocess", root / "in", "--captions", captions, "--out", out, "--size", "1280x720"]
        code, stdout, stderr = cli(capsys, *args, *(["--strict"] if strict else []))
        assert code in (0, 2), stderr
        assert "Traceback" not in stderr and "internal error" not in stderr, stderr
        leftovers = [p.name for p in out.parent.glob(".*")] if out.parent.exists() else []
        assert leftovers == []
        if code == 0:
            assert validate_dataset(out) == []
            assert json.loads((root / "out" / "d.report.json").read_text())["kept"]["clips"] >= 1
        else:
            assert not out.exists()
            assert stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1, stderr


def test_corruption_helpers_change_the_bytes():
    sample = b'{"a": [12, 3.5]}'
    assert corrupt(sample, "truncate", 1, b"x", b"") != sample or len(sample) == 0
    assert corrupt(sample, "swap-number", 0, b"x", b"NaN") in (b'{"a": [NaN, 3.5]}', b'{"a": [12, NaN]}')
    assert corrupt(sample, "empty", 0, b"x", b"") == b""
    assert io.BytesIO(corrupt(sample, "append", 0, b"zz", b"")).read().endswith(b"zz")
