"""The examples run as written (the quickstart here; the training ones are timed in the closing note)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from k2m_core.export.amass import read_amass_npz

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_as_written(tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    result = subprocess.run(["bash", str(ROOT / "examples" / "quickstart.sh"), str(out)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    jump = read_amass_npz(out / "a_man_jumps_00.npz")
    assert jump["poses"].shape == (150, 72) and jump["text"] == "a man jumps"
    for name in ("a_man_jumps_00.bvh", "a_man_jumps_00.mp4", "paraphrases.mp4", "60fps/a_man_jumps_00.bvh"):
        assert (out / name).stat().st_size > 1000, name
    for prompt in ("someone_leaps", "a_person_hops_up_and_down", "a_man_walks_slowly_to_the_left"):
        assert 60 <= len(read_amass_npz(out / f"{prompt}_00.npz")["poses"]) <= 300
    frame_lines = [l for l in (out / "60fps/a_man_jumps_00.bvh").read_text().splitlines() if l.startswith("Frames:")]
    assert frame_lines == ["Frames: 299"]  # 149/30 s at 60 fps
    assert np.isfinite(jump["joints"]).all()
