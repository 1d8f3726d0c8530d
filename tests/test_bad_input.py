"""Bad input, faults and attacks, one case per row: every case ends in one ``error: …`` line and
exit code 2 naming the file or option at fault, or in correct output.

The cases are grouped by cause ("item" numbers):

1. the file system refuses an output (read-only place, a file where a folder is expected);
2. an empty ``.npz``;  3. non-finite motions;  4. training on unsound keypoints;
5. damaged or empty datasets;  6. option values out of range, damaged BVH timing, messages that
   must name the option or line at fault;  7. keypoints far outside the frame;
8. runs that fail before their first checkpoint;  9. ``--resume RUN --steps M``;
10. ``gen`` losing output;  11. unreadable training state and metrics;
12. attacks: pickled code, TorchScript, ``checkpoints/latest`` and clip ids leaving their folder;
13. a killed ``preprocess``: its temp files and worker processes.

Each case is a function that builds its inputs in its own folder and returns the command line;
``@case(item, error=[...])`` registers it with the words its one error line must contain
(``{tmp}`` stands for the case's folder), ``@case(item, check=fn)`` with a function asserting
what a run that must succeed (or what a refused one) left behind. Run them all with
``pytest tests/test_bad_input.py``; ``-k item12`` picks one cause.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from k2m_cli.main import run

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    name: str
    item: int
    build: Callable
    error: list[str] | None
    check: Callable | None


CASES: list[Case] = []


def add(item: int, name: str, build: Callable, *, error: list[str] | None = None,
        check: Callable | None = None) -> None:
    """Register a case: ``error`` for one that must fail (``check`` then inspects what it left behind)."""
    CASES.append(Case(name, item, build, error, check))


def holds(condition: Callable, what: str) -> Callable:
    """A check asserting ``condition(world)``."""
    def check(w, out):
        assert condition(w), what
    return check


def case(item: int, *, error: list[str] | None = None, check: Callable | None = None):
    def register(build):
        add(item, build.__name__, build, error=error, check=check)
        return build
    return register


@dataclass
class World:
    """Inputs shared by the cases (never modified: cases copy what they change) and the case's folder."""

    data: Path  # 24-clip synthetic dataset
    vq: Path  # a finished tiny tokenizer run (2 steps)
    npz: Path  # a good motion, AMASS-style
    bvh: Path  # the same motion as BVH
    jsonl: Path  # k2m JSONL keypoints of 6 synthetic videos
    captions: Path
    kept_video: str  # a video of ``jsonl`` that preprocessing keeps clips of
    readonly: Path | None  # a folder nobody may write into (None: the platform offers none)
    tmp: Path = Path()

    @property
    def file(self) -> Path:
        """An ordinary file where a folder is expected."""
        path = self.tmp / "a_file"
        path.write_text("not a folder\n")
        return path

    def copy(self, source: Path, name: str | None = None) -> Path:
        target = self.tmp / (name or source.name)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
        return target

    def edit_h5(self, edit: Callable[[h5py.File], None], name: str = "data.h5") -> Path:
        path = self.copy(self.data, name)
        with h5py.File(path, "a") as f:
            edit(f)
        return path

    def motion(self, name: str = "m.npz", **changes) -> Path:
        """The good npz motion with some arrays replaced."""
        with np.load(self.npz) as npz:
            arrays = {key: npz[key] for key in npz.files}
        arrays.update(changes)
        path = self.tmp / name
        np.savez(path, **arrays)
        return path


def _readonly_folder(root: Path) -> Path | None:
    if getattr(os, "geteuid", lambda: 0)() != 0:
        folder = root / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    try:  # root may write anywhere on an ordinary file system, but not into /sys
        os.mkdir("/sys/k2m-probe")
    except OSError:
        return Path("/sys")
    os.rmdir("/sys/k2m-probe")
    return None


def _k2m(*args) -> tuple[int, str, str]:
    from io import StringIO
    from contextlib import redirect_stderr, redirect_stdout

    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            run(["-q", *map(str, args)])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory, synth_corpus) -> World:
    import torch

    from k2m_core.body import load_body_model
    from k2m_core.export.motion_file import WorldMotion, save_motion
    from k2m_core.synth.corpus import SynthConfig, write_corpus

    root = tmp_path_factory.mktemp("bad_input")
    data = shutil.copy(synth_corpus / "dataset.h5", root / "data.h5")
    code, _, err = _k2m("train", "vq", "--data", data, "--out", root / "vq", "--preset", "tiny", "--steps", "2",
                        "--set", "train.eval_every=1000")
    assert code == 0, err
    body = load_body_model("skeleton").to(torch.float64)
    frames = np.linspace(0, 1, 40)[:, None]
    poses = np.zeros((40, 72))
    poses[:, 3 * 18 + 2] = 0.5 * np.sin(6 * frames[:, 0])  # an elbow swings
    motion = WorldMotion(poses, np.hstack([frames, 0 * frames, 0.9 + 0 * frames]), np.zeros(10), 30.0, "a man waves")
    save_motion(motion, root / "m.npz", body)
    save_motion(motion, root / "m.bvh", body)
    synth = root / "synth"
    write_corpus(synth, 6, SynthConfig(seed=0), formats=("jsonl",))
    jsonl, captions = synth / "keypoints" / "jsonl" / "clips.jsonl", synth / "captions.jsonl"
    code, _, err = _k2m("preprocess", jsonl, "--captions", captions, "--out", root / "kept.h5")
    assert code == 0, err
    with h5py.File(root / "kept.h5", "r") as f:
        kept_video = f["clip_video"].asstr()[0]
    return World(data=Path(data), vq=root / "vq", npz=root / "m.npz", bvh=root / "m.bvh", jsonl=jsonl,
                 captions=captions, kept_video=kept_video, readonly=_readonly_folder(root))


def pytest_generate_tests(metafunc):
    if "item" in metafunc.fixturenames:  # the list is complete once the module has been read
        metafunc.parametrize("item", [pytest.param(c, id=f"item{c.item}-{c.name}") for c in CASES])


def test_case(item: Case, world: World, tmp_path, monkeypatch):
    world = World(**{**world.__dict__, "tmp": tmp_path})
    if "readonly" in item.name and world.readonly is None:
        pytest.skip("no read-only folder on this platform")
    monkeypatch.chdir(tmp_path)
    code, out, err = _k2m(*item.build(world))
    if item.error is not None:
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
        for word in item.error:
            assert word.format(tmp=tmp_path, ro=world.readonly) in lines[0], (word, lines[0])
    else:
        assert code == 0, err
    if item.check is not None:
        item.check(world, out)


# ---------------------------------------------------------------- 1. OS errors creating outputs


def _gen(out: Path, *more) -> list:
    return ["gen", "a man jumps", "--frames", "60", "--out", out, "--format", "npz", *more]


OUTPUTS = {  # command → the command line writing to ``out`` (a folder or a file name below it)
    "gen": lambda w, out: _gen(out),
    "preprocess": lambda w, out: ["preprocess", w.jsonl, "--captions", w.captions, "--out", out / "d.h5"],
    "export": lambda w, out: ["export", w.npz, "--to", "bvh", "--out", out],
    "render": lambda w, out: ["render", w.npz, "--out", out / "m.mp4", "--size", "64"],
    "physics": lambda w, out: ["eval", "physics", w.npz, "--out", out / "p.json"],
    "text_use": lambda w, out: _text_use(w, "--split", "train", "--max-clips", "4", "--no-generate", "--out",
                                         out / "tu.json"),
    "plot": lambda w, out: ["plot", w.vq, "--out", out / "c.png"],
    "train_vq": lambda w, out: ["train", "vq", "--data", w.data, "--out", out / "run", "--preset", "tiny",
                                "--steps", "1"],
    "mirror": lambda w, out: ["data", "mirror", w.data, "--out", out / "m.h5"],
    "synth": lambda w, out: ["data", "synth", "--out", out / "corpus", "--clips", "1"],
    "lift": lambda w, out: ["lift", "--data", w.data, "--clip", _first_clip(w), "--tokenizer", w.vq, "--out",
                            out / "lifted", "--format", "npz"],
}


def _first_clip(w) -> str:
    with h5py.File(w.data, "r") as f:
        return f["clip_ids"].asstr()[0]

for _command, _line in OUTPUTS.items():
    add(1, f"{_command}_out_below_a_file", lambda w, line=_line: line(w, w.file), error=["{tmp}/a_file"])
    add(1, f"{_command}_out_readonly", lambda w, line=_line: line(w, w.readonly), error=["{ro}"])


@case(1, error=["{tmp}/a_file", "--out"])
def gen_out_is_a_file(w):
    return _gen(w.file)


@case(1, error=["{tmp}/a_file", "--out"])
def train_vq_out_is_a_file(w):
    return ["train", "vq", "--data", w.data, "--out", w.file, "--preset", "tiny", "--steps", "1"]


@case(1, error=["{tmp}/a_file", "--out"])
def synth_out_is_a_file(w):
    return ["data", "synth", "--out", w.file, "--clips", "1"]


@case(1, error=["{tmp}/a_file", "--out"])
def export_out_is_a_file(w):
    return ["export", w.npz, "--to", "bvh", "--out", w.file]


# ---------------------------------------------------------------- 2. empty .npz


@case(2, error=["{tmp}/empty.npz"])
def export_empty_npz(w):
    (w.tmp / "empty.npz").touch()
    return ["export", w.tmp / "empty.npz", "--to", "bvh"]


@case(2, error=["{tmp}/empty.npz"])
def render_empty_npz(w):
    (w.tmp / "empty.npz").touch()
    return ["render", w.tmp / "empty.npz", "--size", "64"]


@case(2, error=["{tmp}/empty.npz"])
def physics_empty_npz(w):
    (w.tmp / "empty.npz").touch()
    return ["eval", "physics", w.tmp / "empty.npz"]


# ---------------------------------------------------------------- 3. non-finite motions


def _nan_poses(w):
    with np.load(w.npz) as npz:
        poses = npz["poses"].copy()
    poses[3, 5] = np.nan
    return poses


@case(3, error=["{tmp}/m.npz", "poses"])
def export_nan_poses(w):
    return ["export", w.motion(poses=_nan_poses(w)), "--to", "bvh"]


@case(3, error=["{tmp}/m.npz", "poses"])
def render_nan_poses(w):
    return ["render", w.motion(poses=_nan_poses(w)), "--size", "64"]


@case(3, error=["{tmp}/m.npz", "poses"])
def physics_nan_poses(w):
    return ["eval", "physics", w.motion(poses=_nan_poses(w))]


@case(3, error=["{tmp}/m.npz", "trans"])
def export_inf_trans(w):
    with np.load(w.npz) as npz:
        trans = npz["trans"].copy()
    trans[0, 2] = np.inf
    return ["export", w.motion(trans=trans), "--to", "bvh"]


@case(3, error=["{tmp}/m.npz", "joints"])
def render_nan_joints(w):
    with np.load(w.npz) as npz:
        joints = npz["joints"].copy()
    joints[1, 1, 1] = np.nan
    return ["render", w.motion(joints=joints), "--size", "64"]


@case(3, error=["{tmp}/m.npz", "mocap_framerate"])
def export_inf_fps(w):
    return ["export", w.motion(mocap_framerate=np.array(np.inf), mocap_frame_rate=np.array(np.inf)), "--to", "bvh"]


@case(3, error=["{tmp}/nan.bvh"])
def export_nan_bvh(w):
    lines = w.bvh.read_text().splitlines()
    values = lines[-1].split()
    values[7] = "nan"
    lines[-1] = " ".join(values)
    (w.tmp / "nan.bvh").write_text("\n".join(lines) + "\n")
    return ["export", w.tmp / "nan.bvh", "--to", "npz"]


# ---------------------------------------------------------------- 4. training checks its dataset


def _set_keypoint(value, row: int = 2):
    def edit(f):
        kp = f["keypoints"]
        frame = kp[40]
        frame[3, row] = value
        if row != 2:
            frame[3, 2] = 0.9
        kp[40] = frame
    return edit


def _train_vq(w, data, *more):
    return ["train", "vq", "--data", data, "--out", w.tmp / "run", "--preset", "tiny", "--steps", "2", *more]


@case(4, error=["{tmp}/data.h5", "NaN", "k2m data validate"])
def train_vq_nan_keypoint(w):
    return _train_vq(w, w.edit_h5(_set_keypoint(np.nan, row=0)))


@case(4, error=["{tmp}/data.h5", "inf", "k2m data validate"])
def train_vq_inf_keypoint(w):
    return _train_vq(w, w.edit_h5(_set_keypoint(np.inf, row=1)))


@case(4, error=["{tmp}/data.h5", "confidence", "k2m data validate"])
def train_vq_confidence_3(w):
    return _train_vq(w, w.edit_h5(_set_keypoint(3.0)))


@case(4, error=["{tmp}/data.h5", "NaN"])
def train_evaluator_nan_keypoint(w):
    return ["eval", "train-evaluator", w.edit_h5(_set_keypoint(np.nan, row=0)), "--out", w.tmp / "run",
            "--preset", "tiny", "--steps", "2"]


def _no_run_dir(w, out):
    assert not (w.tmp / "run").exists(), "a run directory was left behind"


@case(4, error=["{tmp}/data.h5"], check=_no_run_dir)
def train_refusing_data_leaves_no_run_dir(w):
    return _train_vq(w, w.edit_h5(_set_keypoint(np.nan, row=0)))


# ---------------------------------------------------------------- 5. damaged and empty datasets


def _no_fps(f):
    del f.attrs["fps"]


def _no_keypoints(f):
    del f["keypoints"]


def _no_clips(f):
    for name in ("clip_offsets", "caption_offsets"):
        del f[name]
        f[name] = np.zeros(1, np.int64)
    for name in ("clip_ids", "clip_source", "clip_video", "captions"):
        del f[name]
        f.create_dataset(name, shape=(0,), dtype=h5py.string_dtype())
    del f["keypoints"]
    f.create_dataset("keypoints", shape=(0, 18, 3), maxshape=(None, 18, 3), dtype=np.float32, chunks=(64, 18, 3))
    for split in ("train", "val", "test"):
        del f[f"splits/{split}"]
        f[f"splits/{split}"] = np.zeros(0, np.int64)


def _short_offsets(f):
    offsets = f["clip_offsets"][:]
    del f["clip_offsets"]
    f["clip_offsets"] = offsets[:-3]


for _name, _edit in {"no_fps": _no_fps, "no_keypoints": _no_keypoints, "no_clips": _no_clips,
                     "offsets_short": _short_offsets}.items():
    add(5, f"info_{_name}", lambda w, edit=_edit: ["data", "info", w.edit_h5(edit)], error=["{tmp}/data.h5"])
    add(5, f"train_evaluator_{_name}", lambda w, edit=_edit: [
        "eval", "train-evaluator", w.edit_h5(edit), "--out", w.tmp / "run", "--preset", "tiny", "--steps", "2"],
        error=["{tmp}/data.h5"])


@case(5, error=["{tmp}/cut.h5"])
def info_truncated_file(w):
    data = w.data.read_bytes()
    (w.tmp / "cut.h5").write_bytes(data[:len(data) // 2])
    return ["data", "info", w.tmp / "cut.h5"]


# ---------------------------------------------------------------- 6. options


@case(6, error=["--steps"])
def gen_steps_0(w):
    return _gen(w.tmp / "out", "--steps", "0")


@case(6, error=["--temperature"])
def gen_negative_temperature(w):
    return _gen(w.tmp / "out", "--temperature", "-1")


@case(6, error=["--topk"])
def gen_topk_2(w):
    return _gen(w.tmp / "out", "--topk", "2")


@case(6, error=["--cfg"])
def gen_cfg_nan(w):
    return _gen(w.tmp / "out", "--cfg", "nan")


@case(6, error=["--steps"])
def train_vq_steps_0(w):
    return _train_vq(w, w.data, "--steps", "0")


@case(6, error=["--steps"])
def train_vq_steps_negative(w):
    return _train_vq(w, w.data, "--steps", "-3")


@case(6, error=["--batch-size"])
def train_vq_batch_size_0(w):
    return _train_vq(w, w.data, "--batch-size", "0")


@case(6, error=["train.lr"])
def train_vq_negative_lr(w):
    return _train_vq(w, w.data, "--set", "train.lr=-1")


@case(6, error=["train.lr"])
def train_vq_nan_lr(w):
    return _train_vq(w, w.data, "--set", "train.lr=nan")


@case(6, error=["--steps"])
def train_evaluator_steps_0(w):
    return ["eval", "train-evaluator", w.data, "--out", w.tmp / "run", "--preset", "tiny", "--steps", "0"]


@case(6, error=["--steps"])
def train_transformer_steps_0(w):
    return ["train", "transformer", "--data", w.data, "--tokenizer", w.vq, "--out", w.tmp / "run", "--preset",
            "tiny", "--encoder", "words", "--steps", "0"]


@case(6, error=["model.width"])
def train_vq_width_0_names_the_key(w):
    return _train_vq(w, w.data, "--set", "model.width=0")


@case(6, error=["--adapter", "xyz"])
def train_vq_adapter_names_the_option(w):
    return _train_vq(w, w.data, "--adapter", "xyz")


@case(6, error=["{tmp}/p.txt:2", "#0"])
def gen_prompts_file_frames_0_names_the_line(w):
    (w.tmp / "p.txt").write_text("a man jumps #90\na man runs #0\n")
    return ["gen", "--prompts", w.tmp / "p.txt", "--out", w.tmp / "out", "--format", "npz"]


def _preprocess(w, *more):
    return ["preprocess", w.jsonl, "--captions", w.captions, "--out", w.tmp / "d.h5", *more]


@case(6, error=["--size"])
def preprocess_huge_size(w):
    return _preprocess(w, "--size", "99999999999x1")


@case(6, error=["--size"])
def preprocess_nan_size(w):
    return _preprocess(w, "--size", "nanx720")


@case(6, error=["--fps"])
def preprocess_nan_fps(w):
    return _preprocess(w, "--fps", "nan")


@case(6, error=["--fps"])
def preprocess_inf_fps(w):
    return _preprocess(w, "--fps", "inf")


@case(6, error=["--track-shift"])
def preprocess_nan_track_shift(w):
    return _preprocess(w, "--track-shift", "nan")


@case(6, error=["--max-speed"])
def preprocess_nan_max_speed(w):
    return _preprocess(w, "--max-speed", "nan")


@case(6, error=["--size"])
def synth_huge_size(w):
    return ["data", "synth", "--out", w.tmp / "c", "--clips", "1", "--size", "99999999999x1"]


@case(6, error=["--distance"])
def render_distance_0(w):
    return ["render", w.npz, "--out", w.tmp / "m.mp4", "--size", "64", "--distance", "0"]


@case(6, error=["--distance"])
def render_distance_nan(w):
    return ["render", w.npz, "--out", w.tmp / "m.mp4", "--size", "64", "--distance", "nan"]


@case(6, error=["--azimuth"])
def render_azimuth_inf(w):
    return ["render", w.npz, "--out", w.tmp / "m.mp4", "--size", "64", "--azimuth", "inf"]


def _bvh_with(w, name: str, edit: Callable[[list[str]], list[str]]) -> Path:
    path = w.tmp / name
    path.write_text("\n".join(edit(w.bvh.read_text().splitlines())) + "\n")
    return path


def _frame_time(value: str):
    return lambda lines: [f"Frame Time: {value}" if line.startswith("Frame Time:") else line for line in lines]


@case(6, error=["{tmp}/t0.bvh", "Frame Time"])
def export_bvh_frame_time_0(w):
    return ["export", _bvh_with(w, "t0.bvh", _frame_time("0")), "--to", "npz"]


@case(6, error=["{tmp}/tneg.bvh", "Frame Time"])
def export_bvh_frame_time_negative(w):
    return ["export", _bvh_with(w, "tneg.bvh", _frame_time("-0.03")), "--to", "npz"]


@case(6, error=["{tmp}/more.bvh", "Frames"])
def export_bvh_declares_more_frames(w):
    return ["export", _bvh_with(w, "more.bvh", lambda lines: [
        "Frames: 99" if line.startswith("Frames:") else line for line in lines]), "--to", "npz"]


@case(6, error=["{tmp}/cut.bvh", "Frames"])
def export_bvh_cut_short(w):
    return ["export", _bvh_with(w, "cut.bvh", lambda lines: lines[:-5]), "--to", "npz"]


def _text_use(w, *more, data=None) -> list:
    return ["eval", "text-use", "k2m-mini", "--data", data or w.data, "--device", "cpu", *more]


def _no_captions(f):
    del f["captions"], f["caption_offsets"]
    f.create_dataset("captions", shape=(0,), dtype=h5py.string_dtype())
    f["caption_offsets"] = np.zeros(len(f["clip_ids"]) + 1, np.int64)


for _name, _more, _words in (("swap_one_word", ["--swap", "left"], ["--swap 'left'", "A:B"]),
                             ("swap_same_word", ["--swap", "left:left"], ["--swap", "A:B"]),
                             ("split_dev", ["--split", "dev"], ["--split 'dev'"]),
                             ("max_clips_1", ["--max-clips", "1"], ["--max-clips 1"]),
                             ("seconds_1", ["--seconds", "1"], ["--seconds 1"]),
                             ("samples_0", ["--samples", "0"], ["--samples 0"]),
                             ("prompt_without_side", ["--prompt", "a person walks"], ["--prompt", "left or right"]),
                             ("no_caption_names_the_words", ["--swap", "north:south"], ["data.h5", "north, south"])):
    add(6, f"text_use_{_name}", lambda w, more=_more: _text_use(w, *more), error=_words)


@case(6, error=["MODEL no-such-model", "bundled"])
def text_use_unknown_model(w):
    return ["eval", "text-use", "no-such-model", "--data", w.data]


@case(5, error=["{tmp}/data.h5", "no captions"])
def text_use_dataset_without_captions(w):
    return _text_use(w, data=w.edit_h5(_no_captions))


@case(6, error=["{tmp}/tu.json", "--force"],
      check=holds(lambda w: (w.tmp / "tu.json").read_text() == "mine", "an existing --out was replaced"))
def text_use_out_exists(w):
    (w.tmp / "tu.json").write_text("mine")
    return _text_use(w, "--out", w.tmp / "tu.json")


# ---------------------------------------------------------------- 7. keypoints far outside the frame


def _far_keypoints(w, value: float) -> Path:
    """The JSONL input with a confident left wrist at (``value``, ``value``) px throughout `kept_video`."""
    records = [json.loads(line) for line in w.jsonl.read_text().splitlines()]
    for record in records:
        if record["video"] == w.kept_video:
            for frame in record["keypoints"]:
                if frame:
                    frame[9] = [value, value, 0.95]
    path = w.tmp / "far.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _no_far_keypoints(w, out):
    """The video's clips are kept, without the far keypoint."""
    with h5py.File(w.tmp / "d.h5", "r") as f:
        kp, videos, offsets = f["keypoints"][:], f["clip_video"].asstr()[:], f["clip_offsets"][:]
    size = kp[:, 17, :2]
    far = (np.abs(kp[:, :17, :2] - size[:, None] / 2) > 1.5 * size[:, None]).any(-1) & (kp[:, :17, 2] > 0)
    assert not far.any()
    mine = [i for i, v in enumerate(videos) if v == w.kept_video]
    assert mine, "the video lost every clip"
    assert (kp[offsets[mine[0]]:offsets[mine[0] + 1], 9, 2] == 0).all()


@case(7, check=_no_far_keypoints)
def preprocess_drops_keypoint_at_minus_5000(w):
    return ["preprocess", _far_keypoints(w, -5000.0), "--captions", w.captions, "--out", w.tmp / "d.h5"]


@case(7, check=_no_far_keypoints)
def preprocess_drops_keypoint_at_6e9(w):
    return ["preprocess", _far_keypoints(w, 6e9), "--captions", w.captions, "--out", w.tmp / "d.h5"]


@case(7, error=["{tmp}/data.h5"])
def validate_flags_keypoint_outside_the_frame(w):
    def edit(f):
        kp = f["keypoints"]
        frame = kp[10]
        frame[4] = (-5000.0, 300.0, 0.9)
        kp[10] = frame
    path = w.edit_h5(edit)
    code, _, err = _k2m("data", "validate", path)
    assert code == 2 and "outside the frame" in err, err
    return _train_vq(w, path)


# ---------------------------------------------------------------- 8. failed runs leave no half-made run dir


@case(8, check=holds(lambda w: (w.tmp / "run" / "finished.json").exists(), "the second run did not finish"))
def diverged_run_leaves_nothing(w):
    code, _, err = _k2m(*_train_vq(w, w.data, "--set", "train.lr=1e30", "--set", "train.max_bad_steps=0",
                                   "--steps", "3"))
    assert code == 2 and "diverged" in err, err
    assert not (w.tmp / "run").exists()
    return _train_vq(w, w.data)  # the same --out now simply works


def _half_made(w) -> Path:
    """A run killed before its first checkpoint: config and env, no checkpoint."""
    run_dir = w.copy(w.vq, "run")
    shutil.rmtree(run_dir / "checkpoints")
    (run_dir / "checkpoints").mkdir()
    (run_dir / "finished.json").unlink()
    return run_dir


@case(8, error=["{tmp}/run", "first checkpoint", "--force"])
def resume_of_half_made_run(w):
    return ["train", "vq", "--resume", _half_made(w)]


@case(8, error=["{tmp}/run", "first checkpoint", "--force"])
def out_of_half_made_run(w):
    _half_made(w)
    return _train_vq(w, w.data)


# ---------------------------------------------------------------- 9. --resume RUN --steps M


def _extended(w, out):
    from k2m_core.runs import latest_checkpoint

    run_dir = w.tmp / "vq"
    assert latest_checkpoint(run_dir).name == "step_00000004"
    assert json.loads((run_dir / "finished.json").read_text())["steps"] == 4
    assert "steps = 4" in (run_dir / "config.toml").read_text()
    assert [r["step"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())][-1] == 4


@case(9, check=_extended)
def resume_extends_to_more_steps(w):
    return ["train", "vq", "--resume", w.copy(w.vq), "--steps", "4"]


@case(9, error=["--steps 2", "{tmp}/vq", "2 steps"])
def resume_refuses_fewer_steps(w):
    return ["train", "vq", "--resume", w.copy(w.vq), "--steps", "2"]


@case(9, error=["--batch-size", "--resume"])
def resume_refuses_other_settings(w):
    return ["train", "vq", "--resume", w.copy(w.vq), "--batch-size", "4"]


# ---------------------------------------------------------------- 10. gen keeps every output


def _files(w) -> list[str]:
    return sorted(p.name for p in (w.tmp / "out").iterdir())


@case(10, check=holds(lambda w: len(_files(w)) == 2, "one motion overwrote the other"))
def gen_colliding_prompts_keep_both(w):
    return ["gen", "a man jumps", "A MAN JUMPS!", "--frames", "60", "--out", w.tmp / "out", "--format", "npz"]


@case(10, check=holds(lambda w: len(_files(w)) == 2, "one motion overwrote the other"))
def gen_non_latin_prompts_keep_both(w):
    return ["gen", "человек прыгает", "человек бежит", "--frames", "60", "--out", w.tmp / "out", "--format", "npz"]


@case(10, check=holds(lambda w: _files(w) == ["a_man_jumps_00.npz", "a_man_jumps_01.npz"], "not numbered on"))
def gen_same_prompt_twice_keeps_both(w):
    return ["gen", "a man jumps", "a man jumps", "--frames", "60", "--out", w.tmp / "out", "--format", "npz"]


@case(10, error=["{tmp}/out/a_man_jumps_00.npz", "--force"])
def gen_does_not_overwrite(w):
    (w.tmp / "out").mkdir()
    (w.tmp / "out" / "a_man_jumps_00.npz").write_bytes(b"precious")
    return _gen(w.tmp / "out")


@case(10, check=holds(lambda w: (w.tmp / "out" / "a_man_jumps_00.npz").read_bytes()[:2] == b"PK", "not replaced"))
def gen_overwrites_with_force(w):
    (w.tmp / "out").mkdir()
    (w.tmp / "out" / "a_man_jumps_00.npz").write_bytes(b"precious")
    return _gen(w.tmp / "out", "--force")


@case(10, error=["prompt", "empty"])
def gen_empty_prompt(w):
    return ["gen", "", "--frames", "60", "--out", w.tmp / "out"]


@case(10, error=["prompt", "empty"])
def gen_blank_prompt(w):
    return ["gen", "a man jumps", "   ", "--frames", "60", "--out", w.tmp / "out"]


# ---------------------------------------------------------------- 11. unreadable state


@case(11, error=["{tmp}/vq/checkpoints/step_00000002/state.pt"])
def resume_truncated_state(w):
    run_dir = w.copy(w.vq)
    state = run_dir / "checkpoints" / "step_00000002" / "state.pt"
    state.write_bytes(state.read_bytes()[:200])
    return ["train", "vq", "--resume", run_dir, "--steps", "3"]


@case(11, error=["{tmp}/vq/metrics.jsonl:2"])
def plot_garbage_metrics_line(w):
    run_dir = w.copy(w.vq)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    (run_dir / "metrics.jsonl").write_text("\n".join([lines[0], "{garbage", *lines[1:]]) + "\n")
    return ["plot", run_dir]


@case(11, error=["{tmp}/vq/metrics.jsonl:1"])
def plot_metrics_line_not_a_record(w):
    run_dir = w.copy(w.vq)
    (run_dir / "metrics.jsonl").write_text('[1, 2]\n' + (run_dir / "metrics.jsonl").read_text())
    return ["plot", run_dir]


def _half_written_last_line(w) -> Path:
    run_dir = w.copy(w.vq)
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 3, "loss": 0.')
    return run_dir


@case(11, check=holds(lambda w: (w.tmp / "vq" / "curves.png").stat().st_size > 1000, "no plot"))
def plot_half_written_last_line(w):
    return ["plot", _half_written_last_line(w)]


@case(11, check=holds(lambda w: [json.loads(line)["step"] for line in (w.tmp / "vq" / "metrics.jsonl").read_text()
                                  .splitlines()][-1] == 3, "the log does not end at step 3"))
def resume_after_half_written_last_line(w):
    return ["train", "vq", "--resume", _half_written_last_line(w), "--steps", "3"]


# ---------------------------------------------------------------- 12. security


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {Path.cwd() / 'pwned'}",))


def _payload_did_not_run(w, out):
    assert not (w.tmp / "pwned").exists(), "the pickled payload ran"


@case(12, error=["{tmp}/vq/checkpoints/step_00000002/state.pt", "not a k2m checkpoint"], check=_payload_did_not_run)
def resume_malicious_state(w):
    run_dir = w.copy(w.vq)
    import torch

    torch.save({"step": 2, "evil": _Payload()}, run_dir / "checkpoints" / "step_00000002" / "state.pt")
    return ["train", "vq", "--resume", run_dir, "--steps", "3"]


@case(12, error=["{tmp}/vq", "checkpoints/latest"])
def latest_pointing_outside_the_run(w):
    run_dir = w.copy(w.vq)
    elsewhere = w.copy(w.vq, "elsewhere")
    (run_dir / "checkpoints" / "latest").write_text(f"../../{elsewhere.name}/checkpoints/step_00000002")
    return ["train", "vq", "--resume", run_dir, "--steps", "3"]


@case(12, error=["{tmp}/vq", "checkpoints/latest"])
def latest_absolute_path(w):
    run_dir = w.copy(w.vq)
    (run_dir / "checkpoints" / "latest").write_text(str(w.vq / "checkpoints" / "step_00000002"))
    return ["eval", "recon", run_dir, "--max-clips", "1"]


@case(12, error=["{tmp}/script.pt", "TorchScript"])
def clip_weights_torchscript_is_refused(w):
    import torch

    class Tiny(torch.nn.Module):
        def forward(self, x):
            return x + 1

    torch.jit.save(torch.jit.script(Tiny()), str(w.tmp / "script.pt"))
    return ["data", "encode-text", w.copy(w.data), "--encoder", "clip", "--clip-weights", w.tmp / "script.pt"]


@case(12, error=["{tmp}/evil.bin", "Python objects"], check=_payload_did_not_run)
def clip_weights_pickle_payload_is_refused(w):
    import torch

    torch.save({"text_projection": _Payload()}, w.tmp / "evil.bin")
    return ["data", "encode-text", w.copy(w.data), "--encoder", "clip", "--clip-weights", w.tmp / "evil.bin"]


def test_item12_pose_limit_script_reads_arrays_only(tmp_path, monkeypatch):
    """The developer script that derives the pose limits unpickles AIST++ files: arrays only."""
    import pickle

    from k2m_core.tokenizer.derive_pose_limits import load_sources

    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"smpl_poses": _Payload()}))
    with pytest.raises(pickle.UnpicklingError, match="posix.system|nt.system"):
        load_sources(evil, tmp_path / "unused.npz")
    assert not (tmp_path / "pwned").exists()


def _confined(w, out):
    written = [p for p in w.tmp.rglob("*.mp4")]
    assert len(written) == 1 and written[0].parent == w.tmp / "work", written
    assert not (w.tmp / "escaped.mp4").exists()


@case(12, check=_confined)
def render_clip_id_with_dots_stays_in_the_folder(w):
    from k2m_core.data.dataset import Dataset, DatasetWriter

    source = Dataset(w.data)
    with DatasetWriter(w.tmp / "evil.h5") as writer:
        writer.add_clip("../escaped", source.keypoints(0), ["a person walks"])
    (w.tmp / "work").mkdir()
    os.chdir(w.tmp / "work")
    return ["render", w.tmp / "evil.h5", "--clip", "../escaped", "--size", "64"]


# ---------------------------------------------------------------- 13. killed preprocess


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@case(13, check=holds(lambda w: not [p for p in w.tmp.iterdir() if ".tmp-" in p.name], "a temp file is left"))
def preprocess_cleans_stale_temp_files(w):
    (w.tmp / f".d.h5.tmp-{_dead_pid()}").write_bytes(b"left by a killed run")
    return _preprocess(w)


@case(13, check=holds(lambda w: (w.tmp / f".d.h5.tmp-{os.getppid()}").exists(), "a live run's temp file was removed"))
def preprocess_keeps_temp_files_of_live_processes(w):
    (w.tmp / f".d.h5.tmp-{os.getppid()}").write_bytes(b"another run is writing this")
    return _preprocess(w)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_item13_workers_die_with_a_killed_preprocess(world, tmp_path):
    """SIGKILL the parent of `preprocess --workers 2`: its workers (and multiprocessing's resource
    tracker) must not stay behind; the next run removes the temp file the killed one left."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for k in range(200):  # enough work that the workers are busy when the parent dies (40 was not, on a quiet machine)
        shutil.copy(world.jsonl, inputs / f"part{k:02d}.jsonl")
        (inputs / f"part{k:02d}.jsonl").write_text(world.jsonl.read_text().replace('"video": "synth', f'"video": "p{k}_'))
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    parent = subprocess.Popen([sys.executable, "-m", "k2m_cli.main", "-q", "preprocess", str(inputs), "--captions",
                               str(world.captions), "--out", str(tmp_path / "d.h5"), "--workers", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_children(parent.pid)) < 3:  # 2 workers + the resource tracker
        time.sleep(0.1)
    children = _children(parent.pid)
    time.sleep(1.0)
    assert parent.poll() is None, "preprocess ended before it could be killed; give it more work"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(map(_alive, children)):
        time.sleep(0.2)
    left = [pid for pid in children if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert children and not left, f"{len(left)} of {len(children)} child processes outlived their parent"
    assert list(tmp_path.glob(".d.h5.tmp-*")), "the killed run left no temp file to clean"
    code, _, err = _k2m("preprocess", world.jsonl, "--captions", world.captions, "--out", tmp_path / "d.h5")
    assert code == 0, err
    assert not list(tmp_path.glob(".d.h5.tmp-*"))
