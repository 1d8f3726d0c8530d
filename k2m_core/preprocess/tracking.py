"""Person selection: the largest person in each frame (paper A.2), never jumping between people.

Every detection gets the box of its detected keypoints (formats disagree on whether they store
detector boxes, and the result must not depend on the format); in each frame the largest box is
selected. Consecutive selections continue one run only when they are the same person. Identity
comes from keypoint distance — the mean displacement of the keypoints seen in both frames, in
person sizes — which, unlike box overlap, does not fail for fast motion or low frame rates: the
people of neighbouring frames are matched greedily, nearest first, up to ``max_shift``, and the
selected person must be matched to the previously selected one. Otherwise — or at a missing frame
or a change of frame size — a new run starts, so a run (and every clip cut from it) follows one
person. Fast but continuous motion stays in the run and is judged by the speed filters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from k2m_core.preprocess.detections import Detections

MATCH_BLOCK = 2048  # frames per block when matching several people (bounds the pairwise arrays)


@dataclass(frozen=True)
class TrackConfig:
    max_shift: float = 0.5  # most mean keypoint displacement between consecutive frames, in person sizes


@dataclass
class PersonRun:
    """One person over consecutive frames ``frames[0] … frames[-1]`` of a video."""

    track: int
    frames: np.ndarray          # (n,) source frame numbers, consecutive
    xy: np.ndarray              # (n, 17, 2) float32
    conf: np.ndarray            # (n, 17) float32
    size: np.ndarray | None     # (2,) frame size from the file, or None


def keypoint_boxes(xy: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """``(D, 4)`` boxes (x1, y1, x2, y2) around the detected keypoints (conf > 0) of ``xy (D, 17, 2)``;
    detections have at least one (`make_detections` drops the others)."""
    seen = conf > 0
    inf = np.float32(np.inf)
    x, y = xy[..., 0], xy[..., 1]
    return np.stack([np.where(seen, x, inf).min(1), np.where(seen, y, inf).min(1),
                     np.where(seen, x, -inf).max(1), np.where(seen, y, -inf).max(1)], axis=-1)


def _area(box: np.ndarray) -> np.ndarray:
    return (box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1])


def _shift(xy_a, conf_a, xy_b, conf_b, box_a, box_b) -> np.ndarray:
    """Mean displacement of the keypoints seen in both (broadcasting over leading axes), in person
    sizes (the larger side of the larger box); inf when no keypoint is shared."""
    both = (conf_a > 0) & (conf_b > 0)
    delta = xy_b - xy_a
    dist = np.hypot(delta[..., 0], delta[..., 1])
    scale = np.maximum((box_a[..., 2:] - box_a[..., :2]).max(-1), (box_b[..., 2:] - box_b[..., :2]).max(-1))
    count = both.sum(-1)
    mean = np.where(both, dist, 0).sum(-1) / np.maximum(count, 1)
    return np.where(count > 0, mean / np.maximum(scale, 1.0), np.inf)


def _selected_is_matched(slots: np.ndarray, det: Detections, boxes: np.ndarray, max_shift: float) -> np.ndarray:
    """For each pair of consecutive frames (rows of ``slots``: detection indices or −1, largest
    first): is the selected person of the later frame matched to the selected one of the earlier?
    Greedy nearest-first matching, vectorised over frames (one round per person slot)."""
    out = np.zeros(max(len(slots) - 1, 0), dtype=bool)
    for lo in range(0, len(out), MATCH_BLOCK):
        a, b = slots[lo:lo + MATCH_BLOCK], slots[lo + 1:lo + MATCH_BLOCK + 1]
        a = a[:len(b)]
        pa, pb = a[:, :, None], b[:, None, :]
        cost = _shift(det.xy[pa], det.conf[pa], det.xy[pb], det.conf[pb], boxes[pa], boxes[pb])
        cost[(pa < 0) | (pb < 0) | ~(cost <= max_shift)] = np.inf
        n = slots.shape[1]
        partner = np.full(b.shape, -1)
        rows = np.arange(len(a))
        for _ in range(n):
            flat = cost.reshape(len(a), -1)
            k = flat.argmin(1)
            ok = np.isfinite(flat[rows, k])
            if not ok.any():
                break
            r, i, j = rows[ok], k[ok] // n, k[ok] % n
            partner[r, j] = i
            cost[r, i, :] = np.inf
            cost[r, :, j] = np.inf
        out[lo:lo + len(a)] = partner[:, 0] == 0
    return out


def select_person(det: Detections, cfg: TrackConfig) -> list[PersonRun]:
    """Split a video's detections into runs of one person each (see the module docstring)."""
    if len(det) == 0:
        return []
    boxes = keypoint_boxes(det.xy, det.conf)
    new_frame = np.r_[True, det.frame[1:] != det.frame[:-1]]
    frames = det.frame[new_frame]
    if new_frame.all():  # at most one person per frame: nothing to choose or match
        sel = np.arange(len(det))
        matched = np.ones(max(len(sel) - 1, 0), dtype=bool)
    else:
        slots = _slots(new_frame, _area(boxes))
        sel = slots[:, 0]
        matched = _selected_is_matched(slots, det, boxes, cfg.max_shift)
    a, b = sel[:-1], sel[1:]
    same = (np.diff(frames) == 1) & matched
    same &= _shift(det.xy[a], det.conf[a], det.xy[b], det.conf[b], boxes[a], boxes[b]) <= cfg.max_shift
    if det.size is not None:
        same &= (det.size[a] == det.size[b]).all(-1)
    cuts = np.flatnonzero(~same) + 1
    runs = []
    for track, (lo, hi) in enumerate(zip(np.r_[0, cuts], np.r_[cuts, len(sel)])):
        idx = sel[lo:hi]
        runs.append(PersonRun(track=track, frames=frames[lo:hi], xy=det.xy[idx], conf=det.conf[idx],
                              size=None if det.size is None else det.size[idx[0]]))
    return runs


def _slots(new_frame: np.ndarray, area: np.ndarray) -> np.ndarray:
    """``(frames, max people)`` detection indices per frame, largest box first, −1 padded."""
    frame_idx = np.cumsum(new_frame) - 1
    order = np.lexsort((-area, frame_idx))
    starts = np.flatnonzero(new_frame)
    rank = np.arange(len(order)) - starts[frame_idx[order]]
    slots = np.full((len(starts), rank.max() + 1), -1)
    slots[frame_idx[order], rank] = order
    return slots
