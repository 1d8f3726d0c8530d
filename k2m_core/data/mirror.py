"""`k2m data mirror`: add a left–right mirrored copy of every clip, with "left" and "right"
swapped in its captions (HumanML3D's augmentation).

Text models learn direction words from few examples, and a sentence encoder puts "walks to the
left" and "walks to the right" close together (MiniLM: cosine 0.94). A mirrored twin differs from
its clip in nothing but the direction word and the direction of the motion, which is exactly the
difference the model has to learn.

A mirrored clip has the id ``<id>~mirrored`` and the same source video, so it lands in its
original's split (splits are dealt by video). Its keypoints are flipped about the image's
vertical centre line with left and right keypoints swapped (`k2m_core.keypoints.mirror_clip`).
3D ground truth joints are mirrored too (x → −x in the camera frame, left and right joints
swapped); ground-truth poses and translations are not carried, nor are cached text features and
motion tokens (recompute them). The word swap is plain ("right away" becomes "left away"), which
is harmless on synthetic captions; check real captions first.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from k2m_core.body.kinematics import MIRROR as SMPL_MIRROR
from k2m_core.data.dataset import Dataset, DatasetWriter
from k2m_core.errors import UserError
from k2m_core.keypoints import mirror_clip

SUFFIX = "~mirrored"
SWAPS = {"left": "right", "right": "left", "leftward": "rightward", "rightward": "leftward",
         "leftwards": "rightwards", "rightwards": "leftwards", "clockwise": "counterclockwise",
         "counterclockwise": "clockwise", "anticlockwise": "clockwise", "counter-clockwise": "clockwise",
         "anti-clockwise": "clockwise"}


@lru_cache(maxsize=32)
def word_pattern(words: tuple[str, ...]) -> re.Pattern:
    """Any of ``words`` as a whole word (not inside "leftover" or "left-handed"), any case."""
    alternatives = "|".join(sorted(map(re.escape, words), key=len, reverse=True))
    return re.compile(r"(?<![\w-])(" + alternatives + r")(?![\w-])", re.IGNORECASE)


def swap_words(text: str, swaps: dict[str, str]) -> str:
    """Each whole word of ``text`` that is a key of ``swaps`` (lower case) replaced by its value,
    capitalised where the word was."""
    def swap(match: re.Match) -> str:
        word = match.group()
        new = swaps[word.lower()]
        return new.capitalize() if word[0].isupper() else new
    return word_pattern(tuple(swaps)).sub(swap, text)


def mirror_caption(text: str) -> str:
    """"turns left, then spins clockwise" → "turns right, then spins counterclockwise"."""
    return swap_words(text, SWAPS)


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """``(F, 24, 3)`` camera-frame joints of the mirrored video: x → −x, left ↔ right."""
    out = np.array(joints)[:, list(SMPL_MIRROR)]
    out[..., 0] *= -1
    return out


def mirror_dataset(path: Path, out: Path, *, force: bool = False, command: str = "") -> dict:
    """Write ``out`` with every clip of ``path`` and its mirrored twin; returns counts and notes."""
    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to overwrite it")
    if out.exists() and out.resolve() == Path(path).resolve():
        raise UserError(f"--out {out} is the input; write the mirrored dataset to a new file")
    ds = Dataset(path)
    if any(clip_id.endswith(SUFFIX) for clip_id in ds.ids):
        raise UserError(f"{path}: already holds mirrored clips (ids ending in {SUFFIX!r}); mirror the original")
    joints = "joints" in ds.ground_truth_frames
    notes = []
    dropped = sorted(set(ds.ground_truth_frames) - {"joints"}) + list(ds.ground_truth_clips)
    if dropped:
        notes.append(f"ground truth {', '.join(dropped)} not carried (only joints are mirrored)")
    if ds.text_encoders:
        notes.append("cached text features dropped: run `k2m data encode-text` on the new file")
    changed = 0
    carried = {key: ds.attrs[key] for key in ("view", "view_tokenizer") if key in ds.attrs}  # a front view mirrors to one
    with DatasetWriter(out, fps=ds.fps, creation_command=command,
                       split_seed=int(ds.attrs.get("split_seed", 0)), attrs=carried) as writer:
        for i in range(len(ds)):
            keypoints, captions = ds.keypoints(i), ds.captions(i)
            truth = ds.ground_truth("joints", i) if joints else None
            mirrored = [mirror_caption(c) for c in captions]
            changed += mirrored != captions
            writer.add_clip(ds.ids[i], keypoints, captions, source=ds.sources[i], video=ds.videos[i],
                            gt_frames={"joints": truth} if joints else None, focal=float(ds.focals[i]))
            writer.add_clip(ds.ids[i] + SUFFIX, mirror_clip(keypoints), mirrored, source=ds.sources[i],
                            video=ds.videos[i], gt_frames={"joints": mirror_joints(truth)} if joints else None,
                            focal=float(ds.focals[i]))
    return {"clips": 2 * len(ds), "originals": len(ds), "captions_changed": changed, "notes": notes}
