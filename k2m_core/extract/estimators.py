"""Pose-estimator backends behind one interface: an RGB frame in, the people in it out (COCO-17).

Every backend is opened from an `EstimatorSpec` (picklable, so worker processes open their own)
and called as ``estimator(frame, hint=None) -> People``:

- ``mediapipe`` (default, offline): BlazePose "full" from the ``mediapipe`` wheel
  (``pip install 'k2m[video]'``; its ``solutions.pose`` graph with the ``.tflite`` models the
  wheel ships). **Single-person**: it returns at most one person per frame, and in video mode it
  follows that person from frame to frame by its previous landmarks (no ids). Its 33 landmarks are
  mapped to COCO-17 by `BLAZEPOSE_TO_COCO`; the landmark's *visibility* (the model's probability
  that the point is in view and not occluded) is the confidence, set to 0 for a point outside
  the frame. The box is the extent of the 33 landmarks, clipped to the frame.
- ``ultralytics``: YOLO-pose (the paper's fast pass), multi-person with ByteTrack ids. Weights are
  an ONNX export (``--weights yolo11n-pose.onnx``); ``.pt`` files are Python pickles and are refused.
- ``rtmlib``: RTMPose (SimCC, two outputs) or ViTPose (heatmaps, one output) ONNX models (the
  paper's accurate pass). Top-down: the person boxes come from the ``hint`` (the fast pass of
  ``--two-pass``) or from a YOLOX/RTMDet ONNX person detector (``--det-weights``).

Libraries are imported when a backend is opened, never at module import.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from k2m_core.errors import UserError

MEDIAPIPE_PIN = "0.10.14"

# BlazePose landmark index of each COCO-17 keypoint: nose; left, right eye (the eye centres 2 and 5,
# not the inner/outer corners); left, right ear; shoulders 11/12, elbows 13/14, wrists 15/16,
# hips 23/24, knees 25/26, ankles 27/28 (left first, as in COCO). BlazePose's mouth corners,
# hand and foot points (9, 10, 17–22, 29–32) have no COCO-17 counterpart and are dropped.
BLAZEPOSE_TO_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

WEIGHTS_HELP = {
    "ultralytics": "a YOLO-pose model exported to ONNX, e.g. yolo11n-pose.pt from the Ultralytics releases "
                   "(github.com/ultralytics/assets) exported once with `yolo export model=yolo11n-pose.pt "
                   "format=onnx`",
    "rtmlib": "an RTMPose or ViTPose ONNX model, e.g. rtmpose-m body7 256x192 from the RTMPose model zoo "
              "(github.com/open-mmlab/mmpose, projects/rtmpose, the 'onnx_sdk' zips) or rtmlib's README",
}
INSTALL_HELP = {
    "mediapipe": f"pip install 'k2m[video]' (mediapipe=={MEDIAPIPE_PIN})",
    "ultralytics": "pip install ultralytics onnxruntime lap",
    "rtmlib": "pip install rtmlib onnxruntime",
}


@dataclass
class People:
    """The people of one frame: ``xy (P, 17, 2)`` COCO-17 pixels, ``conf (P, 17)`` in [0, 1],
    ``boxes (P, 4)`` x0, y0, x1, y1 pixels, ``ids (P,)`` int64 track ids or None (no tracking)."""

    xy: np.ndarray
    conf: np.ndarray
    boxes: np.ndarray
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.xy)

    @staticmethod
    def empty() -> "People":
        return People(np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32), np.zeros((0, 4), np.float32))


class Estimator(Protocol):
    name: str     # what the JSONL records as its estimator, with version and model
    tracks: bool  # True when `People.ids` are stable person ids across the frames of one video

    def __call__(self, frame: np.ndarray, hint: np.ndarray | None = None) -> People:
        """``frame (H, W, 3)`` uint8 RGB; ``hint (4,)`` the box of the person wanted, if known."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class EstimatorSpec:
    """Which backend, with which model files; checked by `check`, opened per video by `open`."""

    name: str = "mediapipe"
    weights: Path | None = None
    det_weights: Path | None = None
    option: str = "--estimator"  # the option that chose it, for error messages

    def check(self) -> None:
        """`UserError` naming the option for an unknown backend or missing / unusable model files."""
        if self.name not in OPENERS:
            raise UserError(f"{self.option} must be one of {', '.join(OPENERS)}, got {self.name!r}")
        if self.name == "mediapipe":
            if self.weights or self.det_weights:
                raise UserError(f"{self.option} mediapipe uses the pose model inside its wheel; "
                                "--weights and --det-weights are for ultralytics and rtmlib")
            return
        if self.weights is None:
            weights = "--fast-weights" if self.option == "--fast" else "--weights"
            raise UserError(f"{self.option} {self.name} needs model weights: give {weights} PATH, "
                            f"{WEIGHTS_HELP[self.name]}")
        for path in (self.weights, self.det_weights):
            if path is None:
                continue
            if not Path(path).is_file():
                raise UserError(f"{path}: no such model file")
            if Path(path).suffix.lower() != ".onnx":
                pickled = " (.pt/.pth files are Python pickles, which k2m never loads: loading one can run code)" \
                    if Path(path).suffix.lower() in (".pt", ".pth") else ""
                export = f"; export it once with `yolo export model={path} format=onnx`" \
                    if self.name == "ultralytics" else ""
                raise UserError(f"{path}: {self.name} models must be ONNX files{pickled}{export}")
        if self.name == "ultralytics" and self.det_weights:
            raise UserError("--det-weights is for rtmlib; YOLO-pose finds the people itself")

    def open(self, video: bool = True) -> Estimator:
        """A fresh estimator (tracking state starts empty). ``video``: frames are consecutive (the
        backend may follow people between them); False for unrelated images."""
        self.check()
        try:
            return OPENERS[self.name](self, video)
        except UserError:
            raise
        except Exception as exc:  # a broken or foreign model file: the library's own words
            words = str(exc).strip().splitlines()
            raise UserError(f"{self.weights or self.name}: {self.name} cannot load this model "
                            f"({type(exc).__name__}{': ' + words[0] if words else ''})") from None


def _import(module: str, backend: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UserError(f"--estimator {backend} needs the {module} package, which is not installed "
                        f"({exc}): {INSTALL_HELP[backend]}") from None


def boxes_of(xy: np.ndarray, width: float, height: float) -> np.ndarray:
    """``xy (P, K, 2)`` → the boxes ``(P, 4)`` of their extents, clipped to the frame."""
    lo = np.clip(xy.min(1), 0, (width, height))
    hi = np.clip(xy.max(1), 0, (width, height))
    return np.concatenate([lo, hi], axis=1).astype(np.float32)


def from_blazepose(landmarks: np.ndarray, width: float, height: float) -> People:
    """BlazePose ``landmarks (33, 3)`` (x, y normalised to the frame, visibility) → one person."""
    xy = landmarks[:, :2] * (width, height)
    coco = xy[list(BLAZEPOSE_TO_COCO)]
    conf = np.clip(landmarks[list(BLAZEPOSE_TO_COCO), 2], 0.0, 1.0)
    inside = (coco >= 0).all(1) & (coco[:, 0] < width) & (coco[:, 1] < height)
    conf = np.where(inside, conf, 0.0)
    return People(coco[None].astype(np.float32), conf[None].astype(np.float32),
                  boxes_of(xy[None], width, height))


class MediaPipePose:
    """BlazePose full (``model_complexity=1``: the only pose model the wheel ships; lite and heavy
    would be downloaded at run time)."""

    tracks = False

    def __init__(self, video: bool) -> None:
        with _mediapipe_quiet(True):
            mp = _import("mediapipe", "mediapipe")
            self._pose = mp.solutions.pose.Pose(static_image_mode=not video, model_complexity=1,
                                                smooth_landmarks=video, enable_segmentation=False,
                                                min_detection_confidence=0.5, min_tracking_confidence=0.5)
            # its calculators open (and log) on graph threads after the constructor returns
            self._pose._graph.wait_until_idle()
        self.name = f"mediapipe {mp.__version__} BlazePose full"
        self._started = False

    def __call__(self, frame: np.ndarray, hint: np.ndarray | None = None) -> People:
        with _mediapipe_quiet(not self._started):
            result = self._pose.process(frame)
        self._started = True
        if result.pose_landmarks is None:
            return People.empty()
        marks = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)
        return from_blazepose(marks, frame.shape[1], frame.shape[0])

    def close(self) -> None:
        self._pose.close()


@contextmanager
def _mediapipe_quiet(starting: bool) -> Iterator[None]:
    """Hide mediapipe's noise: the deprecation warning of a protobuf API it calls, and (``starting``:
    while its graph is built and first run) the C++ log lines it writes straight to stderr."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype", category=UserWarning)
        if not starting:
            yield
            return
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def from_ultralytics(result) -> People:
    """One ultralytics ``Results`` (``.keypoints.xy (P, 17, 2)``, ``.keypoints.conf (P, 17)``,
    ``.boxes.xyxy (P, 4)``, ``.boxes.id (P,)`` or None) → `People`."""
    if result.keypoints is None or len(result.boxes) == 0:
        return People.empty()

    def numpy(value) -> np.ndarray:
        return np.asarray(value.cpu().numpy() if hasattr(value, "cpu") else value, dtype=np.float32)

    xy = numpy(result.keypoints.xy)
    conf = numpy(result.keypoints.conf) if result.keypoints.conf is not None else np.ones(xy.shape[:2], np.float32)
    ids = result.boxes.id
    return People(xy, np.clip(conf, 0, 1), numpy(result.boxes.xyxy),
                  None if ids is None else numpy(ids).astype(np.int64))


class UltralyticsPose:
    """YOLO-pose through ultralytics, from an ONNX export (run by onnxruntime); ByteTrack ids in
    video mode."""

    def __init__(self, weights: Path, video: bool) -> None:
        # Never let ultralytics install packages or reach its hub at run time.
        os.environ.setdefault("YOLO_AUTOINSTALL", "false")
        os.environ.setdefault("YOLO_OFFLINE", "true")
        os.environ.setdefault("YOLO_VERBOSE", "false")
        ultralytics = _import("ultralytics", "ultralytics")
        _import("onnxruntime", "ultralytics")
        if video:
            _import("lap", "ultralytics")  # ByteTrack's assignment solver
        self._model = ultralytics.YOLO(str(weights), task="pose")
        self.tracks = video
        self.name = f"ultralytics {ultralytics.__version__} {weights.name}"

    def __call__(self, frame: np.ndarray, hint: np.ndarray | None = None) -> People:
        bgr = np.ascontiguousarray(frame[..., ::-1])
        call: Callable = self._model.track if self.tracks else self._model.predict
        extra = {"persist": True, "tracker": "bytetrack.yaml"} if self.tracks else {}
        return from_ultralytics(call(bgr, verbose=False, **extra)[0])

    def close(self) -> None:
        self._model = None


class RTMLibPose:
    """Top-down RTMPose / ViTPose through rtmlib and onnxruntime on the CPU. Their scores (SimCC or
    heatmap maxima) are clipped to [0, 1] as confidences."""

    tracks = False

    def __init__(self, weights: Path, det_weights: Path | None) -> None:
        rtmlib = _import("rtmlib", "rtmlib")
        ort = _import("onnxruntime", "rtmlib")
        session = ort.InferenceSession(str(weights), providers=["CPUExecutionProvider"])
        height, width = session.get_inputs()[0].shape[2:4]
        outputs = session.get_outputs()
        kind = rtmlib.RTMPose if len(outputs) == 2 else rtmlib.ViTPose
        if outputs[0].shape[1] != 17:
            raise UserError(f"{weights}: the model gives {outputs[0].shape[1]} keypoints; k2m needs a COCO-17 "
                            "body model (RTMPose / ViTPose body, not wholebody or hand)")
        del session
        with contextlib.redirect_stdout(io.StringIO()):  # rtmlib prints each model it loads
            self._pose = kind(str(weights), model_input_size=(int(width), int(height)), backend="onnxruntime",
                              device="cpu")
            self._det = None if det_weights is None else rtmlib.YOLOX(str(det_weights), backend="onnxruntime",
                                                                      device="cpu")
        self.name = f"rtmlib {kind.__name__} {weights.name}"

    def __call__(self, frame: np.ndarray, hint: np.ndarray | None = None) -> People:
        bgr = np.ascontiguousarray(frame[..., ::-1])
        if hint is not None:
            boxes = np.asarray(hint, dtype=np.float32).reshape(1, 4)
        elif self._det is not None:
            boxes = np.asarray(self._det(bgr), dtype=np.float32).reshape(-1, 4)
        else:
            raise UserError("--estimator rtmlib is top-down and needs the person boxes: give --det-weights "
                            "DET.onnx (a YOLOX or RTMDet person detector) or use --two-pass")
        if len(boxes) == 0:
            return People.empty()
        keypoints, scores = self._pose(bgr, bboxes=boxes.tolist())
        return People(np.asarray(keypoints, np.float32).reshape(-1, 17, 2),
                      np.clip(np.asarray(scores, np.float32).reshape(-1, 17), 0, 1), boxes)

    def close(self) -> None:
        self._pose = self._det = None


# How each backend is opened from its spec: (spec, video) -> Estimator. The one table of backends.
OPENERS: dict[str, Callable[[EstimatorSpec, bool], Estimator]] = {
    "mediapipe": lambda spec, video: MediaPipePose(video),
    "ultralytics": lambda spec, video: UltralyticsPose(Path(spec.weights), video),
    "rtmlib": lambda spec, video: RTMLibPose(Path(spec.weights), spec.det_weights and Path(spec.det_weights)),
}
