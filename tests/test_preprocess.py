"""Units of the preprocessing pipeline: person selection, resampling, cutting, filters, captions."""

import numpy as np
import pytest

from k2m_core.errors import UserError
from k2m_core.preprocess.captions import load_captions
from k2m_core.preprocess.detections import make_detections
from k2m_core.preprocess.filters import FilterConfig, frame_failures, measure, motion_level
from k2m_core.preprocess.procedural import walking_figure
from k2m_core.preprocess.segment import (
    SegmentConfig, resample, resample_flags, source_positions, split_stretch, valid_stretches)
from k2m_core.preprocess.tracking import TrackConfig, select_person


def detections(people, frames=None):
    """``people``: list of (xy (F,17,2), conf (F,17)) sharing frames; conf 0 rows = absent."""
    n = len(people[0][0])
    frame = np.repeat(np.arange(n) if frames is None else np.asarray(frames), len(people))
    xy = np.stack([p[0] for p in people], 1).reshape(-1, 17, 2)
    conf = np.stack([p[1] for p in people], 1).reshape(-1, 17)
    return make_detections("v", "v.npz", frame, xy, conf)


def test_largest_person_is_selected_and_followed():
    big = walking_figure(40, seed=0, person_height=0.7)
    small = walking_figure(40, seed=1, person_height=0.3)
    small = (small[0] + np.array([400.0, 0.0], np.float32), small[1])
    (run,) = select_person(detections([small, big]), TrackConfig())
    np.testing.assert_array_equal(run.xy, big[0])
    assert run.frames.tolist() == list(range(40))


def test_clip_never_jumps_between_people():
    a = walking_figure(30, seed=0, person_height=0.6)
    b = walking_figure(30, seed=1, person_height=0.5)
    b = (b[0] + np.array([250.0, 0.0], np.float32), b[1])
    # person a leaves (its detection shrinks to nothing) from frame 12: b becomes the largest
    a[1][12:] = 0.0
    runs = select_person(detections([a, b]), TrackConfig())
    assert [r.frames[[0, -1]].tolist() for r in runs] == [[0, 11], [12, 29]]
    np.testing.assert_array_equal(runs[0].xy, a[0][:12])
    np.testing.assert_array_equal(runs[1].xy, b[0][12:])


def test_overlapping_people_swapping_size_are_told_apart():
    # Two people side by side, 0.14 person sizes apart (closer than the identity threshold): from
    # frame 10 the right one is the larger. Matching nearest-first between frames keeps
    # identities, so the run is cut at the swap rather than continued with the other person.
    left = walking_figure(20, seed=0, person_height=0.6, noise_px=0)
    right = walking_figure(20, seed=0, person_height=0.6, noise_px=0)
    right = (right[0] + np.array([60.0, 0.0], np.float32), right[1])
    grow = np.where(np.arange(20) >= 10, 1.1, 0.95)[:, None, None]
    centre = right[0].mean(1, keepdims=True)
    right = ((centre + (right[0] - centre) * grow).astype(np.float32), right[1])
    runs = select_person(detections([left, right]), TrackConfig(max_shift=0.5))
    assert [r.frames[[0, -1]].tolist() for r in runs] == [[0, 9], [10, 19]]
    np.testing.assert_array_equal(runs[1].xy, right[0][10:])


def test_runs_are_cut_at_missing_frames_and_teleports():
    xy, conf = walking_figure(30, seed=3)
    frames = np.r_[0:10, 12:30]  # frames 10, 11 missing
    xy = xy[frames]
    conf = conf[frames]
    xy[20:] += np.array([500.0, 0.0], np.float32)  # a jump the size of a person: another person
    runs = select_person(make_detections("v", "v", frames, xy, conf), TrackConfig())
    assert [(r.track, r.frames[0], r.frames[-1]) for r in runs] == [(0, 0, 9), (1, 12, 21), (2, 22, 29)]


@pytest.mark.parametrize("fps", [25.0, 60.0, 24.0, 30.0])
def test_resampling_keeps_timing(fps):
    seconds = 3.0
    n = int(seconds * fps) + 1
    t = np.arange(n) / fps
    xy = np.zeros((n, 17, 2), np.float32)
    xy[..., 0] = (100 + 50 * np.sin(2 * np.pi * 1.5 * t))[:, None]  # 1.5 Hz
    xy[..., 1] = (200 + 40 * t)[:, None]                             # 40 px/s drift
    conf = np.full((n, 17), 0.9, np.float32)
    conf[n // 2, 3] = 0.2
    pos = source_positions(n, fps, 30.0)
    out_xy, out_c = resample(xy, conf, pos)
    assert len(out_xy) == int(seconds * 30) + 1  # same duration
    t30 = np.arange(len(out_xy)) / 30
    np.testing.assert_allclose(out_xy[:, 0, 1], 200 + 40 * t30, atol=1e-3)  # linear part exact
    err = np.abs(out_xy[:, 0, 0] - (100 + 50 * np.sin(2 * np.pi * 1.5 * t30))).max()
    assert err < (1e-3 if fps in (30.0, 60.0) else 0.05 * 50)  # interpolation error only between frames
    # confidence never rises by interpolation; a weak keypoint stays weak next to it
    assert out_c.max() <= 0.9 + 1e-7
    weak_t = (n // 2) / fps
    near = np.abs(t30 - weak_t) < 1 / fps
    assert (out_c[near, 3] <= 0.2 + 1e-7).all()


def test_resampling_from_60_takes_every_other_frame_exactly():
    xy, conf = walking_figure(121, fps=60)
    out_xy, out_c = resample(xy, conf, source_positions(121, 60, 30))
    np.testing.assert_array_equal(out_xy, xy[::2])
    np.testing.assert_array_equal(out_c, conf[::2])
    flags = np.zeros(121, bool)
    flags[7] = True
    assert np.flatnonzero(resample_flags(flags, source_positions(121, 60, 30))).tolist() == []  # 7 is skipped
    assert np.flatnonzero(resample_flags(flags, source_positions(121, 25, 30))).size == 2  # both neighbours


def test_missing_keypoint_stays_missing_when_interpolated():
    xy = np.ones((3, 17, 2), np.float32) * 100
    conf = np.ones((3, 17), np.float32)
    conf[1, 0], xy[1, 0] = 0, 0
    out_xy, out_c = resample(xy, conf, source_positions(3, 25, 30))
    assert (out_c[:, 0][(out_c[:, 0] > 0)] == 1).all() and (out_xy[out_c == 0] == 0).all()
    assert (out_c[:, 0] == 0).sum() == 2


def test_stretches_and_splitting():
    valid = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1], bool)
    assert valid_stretches(valid) == [(0, 2), (3, 6), (8, 9)]
    cfg = SegmentConfig()
    assert (cfg.min_frames, cfg.max_frames) == (60, 300)
    pieces = split_stretch(10, 10 + 301, 300)
    assert pieces == [(10, 160), (160, 311)]
    pieces = split_stretch(0, 1000, 300)
    lengths = [b - a for a, b in pieces]
    assert len(pieces) == 4 and max(lengths) <= 300 and max(lengths) - min(lengths) <= 1 and sum(lengths) == 1000


def test_each_frame_filter_flags_what_it_should():
    cfg = FilterConfig()
    xy, conf = walking_figure(90, noise_px=0.5)
    def fails(xy, conf, height=720, moving=None, cfg=cfg):
        return frame_failures(measure(xy, conf, cfg.min_conf), height, 30, moving, cfg)

    def motion(xy, conf):
        return motion_level(measure(xy, conf, cfg.min_conf), 0, len(xy), 30)

    assert not any(mask.any() for mask in fails(xy, conf).values())
    assert motion(xy, conf) > 0.3

    low = conf.copy()
    low[:, [0, 1, 2, 3, 4]] = 0.2  # 12/17 seen = 0.71 ≤ 0.75
    assert fails(xy, low)["low-confidence"].all()
    low[:, 4] = 0.9  # 13/17 seen = 0.76 > 0.75
    assert not fails(xy, low)["low-confidence"].any()

    ankle = conf.copy()
    ankle[40:50, 15] = 0.3
    failed = fails(xy, ankle)
    assert np.flatnonzero(failed["lower-body-confidence"]).tolist() == list(range(40, 50))
    assert not failed["low-confidence"].any()
    assert not fails(xy, ankle, cfg=FilterConfig(lower_body=False))["lower-body-confidence"].any()

    assert fails(xy, conf, height=720 * 4)["small-person"].all()
    assert not fails(xy, conf, height=720 * 4, cfg=FilterConfig(min_box_height=0.1))["small-person"].any()

    jump = xy.copy()
    jump[45:] += np.array([300.0, 0.0], np.float32)  # 300 px ≈ 0.75 person sizes in one frame
    failed = fails(jump, conf)
    assert np.flatnonzero(failed["too-fast"]).tolist() == [44, 45]
    assert np.flatnonzero(failed["too-jerky"]).tolist() == [43, 44, 45, 46]

    moving = np.zeros(90, bool)
    moving[10:20] = True
    assert np.flatnonzero(fails(xy, conf, moving=moving)["camera-moving"]).tolist() == list(range(10, 20))

    still = np.repeat(xy[:1], 90, 0) + np.random.default_rng(0).normal(0, 1.0, xy.shape).astype(np.float32)
    assert motion(still, conf) < cfg.min_speed


def test_captions_jsonl_and_csv(tmp_path):
    j = tmp_path / "c.jsonl"
    j.write_bytes(b'{"video": "a", "captions": ["one", "two", "one"]}\n'
                  b'{"clip": "a_t0_000000", "caption": "clip level"}\n'
                  b'{"video": "b", "captions": ["  "]}\n'
                  b'{"video": "c", "captions": ["caf\xe9"]}\n'
                  b'not json\n\n'
                  b'{"video": "a", "captions": ["three"]}\n')
    caps = load_captions(j)
    assert caps.by_id["a"] == ["one", "two", "three"]
    assert caps.lookup("a_t0_000000", "a") == ["clip level"] and caps.lookup("a_t0_000090", "a") == ["one", "two", "three"]
    assert caps.lookup("x", "b") is None
    assert [(i.where, i.reason) for i in caps.issues] == [
        ("c.jsonl:3", "caption-empty"), ("c.jsonl:4", "caption-not-utf8"), ("c.jsonl:5", "caption-malformed")]
    c = tmp_path / "c.csv"
    c.write_bytes("video_id,caption_1,caption_2\nv1,\"walks, then stops\",\nv2,jumps,hops\nv3,,\n".encode()
                  + b"v4,caf\xe9,x\n")
    caps = load_captions(c)
    assert caps.by_id == {"v1": ["walks, then stops"], "v2": ["jumps", "hops"]}
    assert [(i.where, i.reason) for i in caps.issues] == [("c.csv:4", "caption-empty"), ("c.csv:5", "caption-not-utf8")]
    (tmp_path / "bad.csv").write_text("name,words\nx,y\n")
    with pytest.raises(UserError, match="header"):
        load_captions(tmp_path / "bad.csv")
    (tmp_path / "none.jsonl").write_text('{"video": "a", "captions": [""]}\n')
    with pytest.raises(UserError, match="no usable caption"):
        load_captions(tmp_path / "none.jsonl")
