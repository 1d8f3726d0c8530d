"""End to end: inputs in every format → `k2m preprocess` → dataset file, filters, CLI behaviour."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_preprocess_support import (
    FORMATS, assert_same_dataset, cli, dataset_dict, walkers, write_captions, write_inputs, write_video_info)

from k2m_core.data.dataset import Dataset
from k2m_core.preprocess.config import InputOptions, PreprocessConfig
from k2m_core.preprocess.formats import write_pose_npz
from k2m_core.preprocess.pipeline import run_preprocess
from k2m_core.preprocess.procedural import walking_figure
from k2m_core.preprocess.validate import validate_dataset

REAL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real"
# Everything passes: used where a test is about formats, not filters.
PERMISSIVE = ["--min-conf", "0", "--min-visible", "0", "--no-lower-body", "--min-box-height", "0",
              "--max-speed", "1e9", "--max-accel", "1e9", "--min-speed", "0", "--track-shift", "1e9"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three clean walkers (4 s, 6 s, 12 s — the last is split in two) in every format."""
    root = tmp_path_factory.mktemp("corpus")
    records = walkers(2, seconds=4.0) + [dict(walkers(3, seconds=6.0)[2])]
    records[1] = dict(walkers(2, seconds=12.0)[1])
    for fmt in FORMATS:
        write_inputs(root / fmt, records, fmt)
    return root, records, write_captions(root / "captions.jsonl", records), write_video_info(root / "info.jsonl", records)


@pytest.fixture(scope="module")
def baseline(corpus, tmp_path_factory):
    root, records, captions, info = corpus
    out = tmp_path_factory.mktemp("base") / "npz.h5"
    result = run_preprocess([root / "npz"], out, captions, PreprocessConfig(seed=3))
    assert result[0].clips == 4  # 4 s + 2 × 6 s + 6 s
    return dataset_dict(out)


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_clips_in_same_dataset_out_whatever_the_format(capsys, tmp_path, corpus, baseline, fmt):
    root, records, captions, info = corpus
    out = tmp_path / f"{fmt}.h5"
    code, stdout, stderr = cli(capsys, "-q", "preprocess", root / fmt, "--captions", captions, "--out", out,
                               "--video-info", info, "--seed", "3")
    assert code == 0, stderr
    assert stderr == ""  # --quiet: no bar, no table
    assert f"{out}: 4 clips" in stdout
    assert_same_dataset(dataset_dict(out), baseline)
    assert validate_dataset(out) == []


@pytest.fixture(scope="module")
def synth_corpus(tmp_path_factory):
    """`k2m data synth` output: its clips are the inputs, written with our writers."""
    root = tmp_path_factory.mktemp("synth")
    done = subprocess.run([sys.executable, "-m", "k2m_cli.main", "-q", "data", "synth", "--out", str(root / "s"),
                           "--clips", "4", "--seed", "5"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ds = Dataset(root / "s" / "dataset.h5")
    records = []
    for i, clip_id in enumerate(ds.ids):
        kp = ds.keypoints(i)
        records.append({"video": clip_id, "xy": kp[:, :17, :2], "conf": kp[:, :17, 2], "fps": ds.fps,
                        "width": float(kp[0, 17, 0]), "height": float(kp[0, 17, 1]), "focal": float(ds.focals[i])})
    return root, records, ds


@pytest.mark.parametrize("fmt", FORMATS)
def test_synth_corpus_goes_through_every_format_unchanged(capsys, tmp_path, synth_corpus, fmt):
    root, records, ds = synth_corpus
    inputs = write_inputs(tmp_path / "in", records, fmt)
    # the synth corpus' own files: captions by video, per-clip frame size in clips.jsonl
    code, _, stderr = cli(capsys, "-q", "preprocess", inputs, "--captions", root / "s" / "captions.jsonl",
                          "--video-info", root / "s" / "clips.jsonl", "--fps", "30", "--out", tmp_path / "o.h5",
                          *PERMISSIVE)
    assert code == 0, stderr
    out = Dataset(tmp_path / "o.h5")
    assert sorted(out.videos) == sorted(ds.ids)  # one clip per synth clip (all are 2–10 s)
    for i, video in enumerate(out.videos):
        j = ds.index_of(video)
        np.testing.assert_array_equal(out.keypoints(i), ds.keypoints(j))
        assert out.captions(i) == ds.captions(j)
        assert out.focals[i] == ds.focals[j]  # from the file (jsonl, npz) or the clips.jsonl table


def test_focal_precedence_file_then_video_info_then_option_then_default(capsys, tmp_path):
    """The focal length comes from the estimator file, else a focal column of --video-info, else
    --focal/--fov, else DEFAULT_FOCAL_PER_EXTENT × the long side — per video."""
    from k2m_core.keypoints import DEFAULT_FOCAL_PER_EXTENT, focal_from_fov

    records = walkers(3, seconds=3.0)
    records[0]["focal"] = 1111.0  # only this file says
    inputs = write_inputs(tmp_path / "in", records, "npz")
    captions = write_captions(tmp_path / "c.jsonl", records)
    info = tmp_path / "info.csv"
    info.write_text("video,width,height,fps,focal\nwalk00,1280,720,30,2222\nwalk01,1280,720,30,2222\n"
                    "walk02,1280,720,30,\n")

    def focals(*options):
        out = tmp_path / f"o{len(list(tmp_path.glob('o*.h5')))}.h5"
        code, _, stderr = cli(capsys, "-q", "preprocess", inputs, "--captions", captions, "--out", out, *PERMISSIVE,
                              *options)
        assert code == 0, stderr
        ds = Dataset(out)
        return {video: float(f) for video, f in zip(ds.videos, ds.focals)}

    assert focals("--video-info", info, "--focal", "3333") == {"walk00": 1111.0, "walk01": 2222.0, "walk02": 3333.0}
    by_fov = focals("--fov", "60")
    assert by_fov["walk00"] == 1111.0 and by_fov["walk02"] == pytest.approx(focal_from_fov(60, 1280, 720))
    assert by_fov["walk02"] == pytest.approx(640 / np.tan(np.radians(30)))
    assert focals()["walk01"] == pytest.approx(DEFAULT_FOCAL_PER_EXTENT * 1280)
    code, _, stderr = cli(capsys, "preprocess", inputs, "--captions", captions, "--out", tmp_path / "x.h5",
                          "--focal", "900", "--fov", "60")
    assert code == 2 and "--focal or --fov" in stderr
    assert cli(capsys, "preprocess", inputs, "--captions", captions, "--out", tmp_path / "x.h5", "--fov", "190")[0] == 2
    info.write_text("video,width,height,fps,focal\nwalk00,1280,720,30,-5\n")
    code, _, stderr = cli(capsys, "preprocess", inputs, "--captions", captions, "--out", tmp_path / "x.h5",
                          "--video-info", info)
    assert code == 2 and "focal" in stderr and "info.csv:2" in stderr


def named(summary, reason):
    """Videos named in the examples of one rejection reason."""
    examples = summary["rejections"].get(reason, {}).get("examples", [])
    return {Path(e.split()[0].rstrip(":")).stem for e in examples}


def write_video(path, frames, pan):
    import imageio_ffmpeg
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    width, height = 160, 96
    background = gaussian_filter(rng.uniform(0, 255, (height, width * 4)), 2)
    background = (255 * (background - background.min()) / np.ptp(background)).astype(np.uint8)
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=30, pix_fmt_in="gray", macro_block_size=1)
    writer.send(None)
    for t in range(frames):
        writer.send(np.ascontiguousarray(background[:, pan * t:pan * t + width]))
    writer.close()


def test_filters_reject_exactly_the_clips_built_to_violate_them(tmp_path):
    fps, n = 30.0, 90
    clean = {f"walk{i}": walking_figure(n, fps, seed=i, phase=i) for i in range(3)}
    clean["steady"] = walking_figure(n, fps, seed=7)  # has a static video: camera checked, kept
    bad = {}
    xy, conf = walking_figure(n, fps, seed=10)
    conf = conf.copy()
    conf[:, :5] = 0.2  # face unseen: 12/17 keypoints seen, not more than 75 %
    bad["lowconf"] = (xy, conf, "low-confidence")
    xy, conf = walking_figure(n, fps, seed=11)
    conf = conf.copy()
    conf[:, 15] = 0.3  # left ankle below the threshold
    bad["ankle"] = (xy, conf, "lower-body-confidence")
    bad["tiny"] = (*walking_figure(n, fps, seed=12, person_height=0.25), "small-person")
    xy, conf = walking_figure(n, fps, seed=13)
    size = np.ptp(xy[..., 1], axis=1).mean()
    glide = 12.0 * size * np.arange(n)[:, None, None] / fps  # 12 person sizes per second, no acceleration
    bad["teleport"] = (xy + glide * np.array([1.0, 0.0]), conf, "too-fast")
    xy, conf = walking_figure(n, fps, seed=14)
    shake = 0.13 * size * (-1.0) ** np.arange(n)[:, None, None]  # ±0.13 sizes every frame
    bad["jitter"] = (xy + shake * np.array([0.0, 1.0]), conf, "too-jerky")
    xy, conf = walking_figure(n, fps, seed=15, noise_px=0.0)
    still = np.repeat(xy[:1], n, 0) + np.random.default_rng(1).normal(0, 1.0, xy.shape)
    bad["still"] = (still, conf, "stationary")
    bad["short"] = (*walking_figure(45, fps, seed=16), "too-short")
    bad["pan"] = (*walking_figure(n, fps, seed=17), "camera-moving")
    folder = tmp_path / "in"
    for video, (xy, conf) in clean.items():
        write_pose_npz(folder / f"{video}.npz", xy, conf, fps=fps, width=1280, height=720)
    for video, (xy, conf, _) in bad.items():
        # The glide covers 36 person sizes: a panorama wide enough keeps it in the frame (keypoints
        # far outside the frame would be dropped as glitches before the speed is measured).
        write_pose_npz(folder / f"{video}.npz", xy, conf, fps=fps, width=12800 if video == "teleport" else 1280,
                       height=720)
    write_video(folder / "steady.mp4", n, pan=0)
    write_video(folder / "pan.mp4", n, pan=4)
    captions = tmp_path / "captions.csv"
    captions.write_text("video,caption\n" + "".join(f"{v},someone moves\n" for v in [*clean, *bad]))
    report, summary = run_preprocess([folder], tmp_path / "d.h5", captions, PreprocessConfig())
    ds = Dataset(tmp_path / "d.h5")
    assert sorted(set(ds.videos)) == sorted(clean) and len(ds) == len(clean)
    assert all(len(ds.keypoints(i)) == n for i in range(len(ds)))
    for video, (_, _, reason) in bad.items():
        assert named(summary, reason) == {video}, (reason, summary["rejections"].get(reason))
    assert set(summary["rejections"]) == {reason for *_, reason in bad.values()}
    assert summary["camera"] == {"checked_videos": 2, "not_checked_videos": len(clean) + len(bad) - 2}
    assert summary["rejections"]["camera-moving"]["frames"] == n
    assert summary["kept"] == {"clips": 4, "frames": 4 * n, "hours": round(4 * n / 30 / 3600, 4), "videos": 4,
                               "fps": 30.0}


@pytest.mark.parametrize("fps", [25.0, 60.0])
def test_resampling_from_other_rates_keeps_timing(tmp_path, fps):
    seconds = 5.0
    n = int(seconds * fps)
    xy, conf = walking_figure(n, fps, noise_px=0.0)
    write_pose_npz(tmp_path / "in" / "w.npz", xy, conf, fps=fps, width=1280, height=720)
    (tmp_path / "c.jsonl").write_text('{"video": "w", "captions": ["walks"]}\n')
    run_preprocess([tmp_path / "in"], tmp_path / "d.h5", tmp_path / "c.jsonl", PreprocessConfig())
    ds = Dataset(tmp_path / "d.h5")
    (clip,) = [ds.keypoints(i) for i in range(len(ds))]
    assert len(clip) == int((n - 1) * 30 / fps) + 1  # the same span of time at 30 fps
    truth, _ = walking_figure(len(clip), 30.0, noise_px=0.0)
    np.testing.assert_allclose(clip[:, :17, :2], truth, atol=1e-3 if fps == 60 else 3.0)
    source = json.loads(ds.sources[0])
    assert source["frames"] == [0, int(np.ceil((len(clip) - 1) * fps / 30))] and source["fps"] == fps


def test_video_ids_come_from_the_path_below_the_input_folder(tmp_path):
    """Generic file names in per-video folders (clipA/coco_results.json, clipB/…) stay distinct videos."""
    from k2m_core.preprocess.formats import discover, write_coco_results

    xy, conf = walking_figure(120, 30.0, noise_px=0.0)
    for name in ("clipA/coco_results.json", "clipB/coco_results.json", "clipA/side/walk.npz", "clipB/side/walk.npz"):
        if name.endswith(".json"):
            write_coco_results(tmp_path / "in" / name, xy, conf)
        else:
            write_pose_npz(tmp_path / "in" / name, xy, conf, fps=30.0, width=1280, height=720)
    ids = sorted(u.video for u in discover([tmp_path / "in"], "auto", set(), 1 << 20))
    assert ids == ["clipA", "clipA/side/walk", "clipB", "clipB/side/walk"]
    assert [u.video for u in discover([tmp_path / "in" / "clipB" / "side" / "walk.npz"], "auto", set(), 1 << 20)] \
        == ["walk"]  # an input given by itself: its name
    (tmp_path / "c.csv").write_text("video,caption\nclipA,walks\nclipB,strolls\nclipA/side/walk,walks on\n"
                                    "clipB/side/walk,walks off\n")
    cfg = PreprocessConfig(inputs=InputOptions(size=(1280.0, 720.0)))
    report, summary = run_preprocess([tmp_path / "in"], tmp_path / "d.h5", tmp_path / "c.csv", cfg)
    ds = Dataset(tmp_path / "d.h5")
    assert sorted(set(ds.videos)) == ids and "duplicate-video" not in summary["rejections"]
    assert {ds.captions(i)[0] for i in range(len(ds))} == {"walks", "strolls", "walks on", "walks off"}
    assert all(".." not in v.split("/") and not v.startswith("/") for v in ds.videos + ds.ids)


def test_real_running_clip(capsys, tmp_path):
    """The real running clip in COCO-17 order: its legs are there in every frame, its face is not."""
    captions = tmp_path / "c.csv"
    captions.write_text("video,caption\nrunning_coco17_2d,a person runs\n")
    args = ["preprocess", REAL / "running_coco17_2d.npz", "--captions", captions, "--size", "3840x2160"]
    # 12 of 17 keypoints seen (no face): the paper's visibility filter drops every frame, the legs pass.
    code, _, err = cli(capsys, "-q", *args, "--out", tmp_path / "strict.h5")
    assert code == 2 and "no clip was kept" in err and not (tmp_path / "strict.h5").exists()
    report = json.loads((tmp_path / "strict.report.json").read_text())
    assert report["inputs"]["frames"] == 203
    assert report["rejections"]["low-confidence"]["frames"] == 203
    assert "lower-body-confidence" not in report["rejections"]
    # With the visibility and size filters relaxed the whole run goes through as one 6.7 s clip.
    code, _, err = cli(capsys, *args, "--out", tmp_path / "run.h5", "--min-visible", "0.7", "--min-box-height", "0.2")
    assert code == 0, err
    assert "clips kept" in err and "rejections" not in err.split("clips kept")[0]
    ds = Dataset(tmp_path / "run.h5")
    clip = ds.keypoints(0)
    assert len(ds) == 1 and len(clip) == 203 and clip[0, 17].tolist() == [3840, 2160, 1]
    assert (clip[:, 11:17, 2] > 0).all() and (clip[:, 11:13, 1] < clip[:, 15:17, 1]).all()  # hips above ankles
    assert validate_dataset(tmp_path / "run.h5") == []


def test_real_coco_sample_goes_through(capsys, tmp_path):
    captions = tmp_path / "c.jsonl"
    captions.write_text('{"video": "coco_person_keypoints_sample", "captions": ["people"]}\n')
    code, _, err = cli(capsys, "-q", "preprocess", REAL / "coco_person_keypoints_sample.json", "--captions", captions,
                       "--out", tmp_path / "d.h5")
    # four unrelated photos: read fine (sizes from the file), but no 2 s of consecutive frames
    assert code == 2 and "no clip was kept" in err
    report = json.loads((tmp_path / "d.report.json").read_text())
    assert report["inputs"] == {"read": 1, "rejected": 0, "videos": 1, "frames": 4}
    assert report["rejections"]["too-short"]["count"] == 4
    assert [f["reason"] for f in report["files"]] == ["frame-gap"] and report["files"][0]["used"]


def test_bad_files_are_reported_and_skipped_or_stop_a_strict_run(capsys, tmp_path):
    records = walkers(2)
    folder = write_inputs(tmp_path / "in", records, "npz")
    (folder / "truncated.json").write_text('[{"image_id": 0, "keypoints": [1, 2')
    (folder / "empty.npz").write_bytes(b"")
    xy, conf = walking_figure(70)
    xy[30, 4, 1] = np.nan  # one coordinate
    write_pose_npz(folder / "nan.npz", xy, conf, width=1280, height=720)
    captions = write_captions(tmp_path / "c.jsonl", records)
    with open(captions, "ab") as handle:
        handle.write(b'{"video": "walk01", "captions": [""]}\n')
    code, out, err = cli(capsys, "preprocess", folder, "--captions", captions, "--out", tmp_path / "d.h5")
    assert code == 0, err and "Traceback" not in err
    report = json.loads((tmp_path / "d.report.json").read_text())
    problems = {(Path(f["file"].split(":")[0]).name, f["reason"]) for f in report["files"]}
    assert problems == {("truncated.json", "unreadable"), ("empty.npz", "empty"), ("nan.npz", "non-finite"),
                        ("c.jsonl", "caption-empty")}
    assert report["kept"]["clips"] == 2 and report["inputs"]["rejected"] == 4
    for reason in ("unreadable", "empty", "non-finite", "caption-empty"):
        assert reason in err  # the summary table lists them
    code, _, err = cli(capsys, "preprocess", folder, "--captions", captions, "--out", tmp_path / "s.h5", "--strict")
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "--strict" in err and not (tmp_path / "s.h5").exists() and not (tmp_path / "s.report.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_refuses_to_overwrite_and_checks_options(capsys, tmp_path, corpus):
    root, records, captions, info = corpus
    out = tmp_path / "d.h5"
    assert cli(capsys, "-q", "preprocess", root / "npz", "--captions", captions, "--out", out)[0] == 0
    before = out.stat().st_mtime_ns
    code, _, err = cli(capsys, "-q", "preprocess", root / "npz", "--captions", captions, "--out", out)
    assert code == 2 and "--force" in err and out.stat().st_mtime_ns == before
    assert cli(capsys, "-q", "preprocess", root / "npz", "--captions", captions, "--out", out, "--force")[0] == 0
    for bad, message in ((["--size", "big"], "--size"), (["--shard", "3/2"], "--shard"),
                         (["--min-conf", "2"], "--min-conf"), (["--workers", "0"], "--workers"),
                         (["--min-seconds", "5", "--max-seconds", "3"], "--min-seconds")):
        code, _, err = cli(capsys, "preprocess", root / "npz", "--captions", captions, "--out", tmp_path / "x.h5", *bad)
        assert code == 2 and message in err, (bad, err)
    code, _, err = cli(capsys, "preprocess", tmp_path / "missing", "--captions", captions, "--out", tmp_path / "x.h5")
    assert code == 2 and "no such file" in err
    code, _, err = cli(capsys, "preprocess", root / "coco", "--captions", captions, "--out", tmp_path / "x.h5")
    assert code == 2 and "no clip was kept" in err  # COCO results carry no frame size ...
    report = json.loads((tmp_path / "x.report.json").read_text())
    assert {f["reason"] for f in report["files"]} == {"no-frame-size"}  # ... and the report says so


def test_workers_and_shards_give_the_same_dataset(capsys, tmp_path, corpus, baseline):
    root, records, captions, info = corpus
    args = ["--captions", captions, "--video-info", info, "--seed", "3"]
    code, _, err = cli(capsys, "-q", "preprocess", root / "openpose", *args, "--out", tmp_path / "w2.h5", "--workers", "2")
    assert code == 0, err
    assert_same_dataset(dataset_dict(tmp_path / "w2.h5"), baseline)
    shards = []
    for i in range(2):
        shards.append(tmp_path / f"part{i}.h5")
        assert cli(capsys, "-q", "preprocess", root / "npz", *args, "--shard", f"{i}/2", "--out", shards[-1])[0] == 0
    sizes = [len(Dataset(p)) for p in shards]
    assert all(sizes) and sum(sizes) == 4
    code, out, err = cli(capsys, "data", "merge", *shards, "--out", tmp_path / "all.h5", "--seed", "3")
    assert code == 0, err
    assert_same_dataset(dataset_dict(tmp_path / "all.h5"), baseline)


def test_captions_are_optional(capsys, tmp_path):
    """Without --captions every clip is kept uncaptioned; a captions file that names one video
    leaves the other's clips kept without captions, counted in the report."""
    for i in range(2):
        xy, conf = walking_figure(150, 30.0, seed=i, noise_px=0.0)
        write_pose_npz(tmp_path / "in" / f"w{i}.npz", xy, conf, fps=30.0, width=1280, height=720)
    code, _, err = cli(capsys, "preprocess", tmp_path / "in", "--out", tmp_path / "none.h5")
    assert code == 0, err
    ds = Dataset(tmp_path / "none.h5")
    assert len(ds) == 2 and ds.all_captions == [] and validate_dataset(tmp_path / "none.h5") == []
    assert json.loads((tmp_path / "none.report.json").read_text())["captions"]["clips_without"] == 2
    assert "without captions" in err
    (tmp_path / "c.csv").write_text("video,caption\nw1,walks\n")
    report, summary = run_preprocess([tmp_path / "in"], tmp_path / "some.h5", tmp_path / "c.csv", PreprocessConfig())
    ds = Dataset(tmp_path / "some.h5")
    assert {ds.videos[i]: ds.captions(i) for i in range(len(ds))} == {"w0": [], "w1": ["walks"]}
    assert summary["captions"]["clips_without"] == 1 and "no-caption" not in summary["rejections"]
    code, _, err = cli(capsys, "preprocess", tmp_path / "in", "--captions", tmp_path / "c.csv", "--strict",
                       "--out", tmp_path / "strict.h5")
    assert code == 2 and "no caption for it" in err and not (tmp_path / "strict.h5").exists()
