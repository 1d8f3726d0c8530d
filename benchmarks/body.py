"""COCO-keypoint throughput of the body models: k2m's `smpl` fast path vs smplx's full forward pass.

    python benchmarks/body.py        (with k2m installed: pip install -e .)

Both SMPL rows read the same generated SMPL-format file (`write_random_smpl_model`; never the
licensed model) and get the same rotation matrices, betas and translations; the `skeleton` backend is
timed alongside. Frames/s is batch / median time of one forward pass (no_grad, after warm-up);
``max Δ`` is the largest absolute keypoint coordinate difference of the fast path from smplx at
that batch (float32).
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import smplx
import torch

from k2m_core.body.kinematics import COCO_LIMB_JOINTS
from k2m_core.body.skeleton import SkeletonBody
from k2m_core.body.smpl import SMPLBody
from k2m_core.body.smpl_file import write_random_smpl_model
from k2m_core.rotations import axis_angle_to_matrix

BATCHES = (1, 64, 4096)
REPEATS = 7  # timings per configuration; the median is reported
MIN_REPEAT_SECONDS = 0.05  # each timing runs enough calls to last at least this long
SMPLX_FACE_JOINTS = [24, 26, 25, 28, 27]  # smplx's nose, reye, leye, rear, lear → COCO order


def smplx_keypoints(model: smplx.SMPL, rotmats, betas, transl):
    out = model(betas=betas, global_orient=rotmats[:, :1], body_pose=rotmats[:, 1:], transl=transl,
                pose2rot=False)
    return torch.cat([out.joints[:, SMPLX_FACE_JOINTS], out.joints[:, list(COCO_LIMB_JOINTS)]], dim=1)


def median_seconds(fns: dict, device: torch.device) -> dict[str, float]:
    """Median seconds per call of each function; repeats alternate between the functions so that
    a change in machine load mid-run affects all of them alike."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    calls = {}
    for name, fn in fns.items():
        for _ in range(2):  # warm-up: allocator, kernels, caches
            fn()
        sync()
        start = time.perf_counter()
        fn()
        sync()
        calls[name] = max(1, int(MIN_REPEAT_SECONDS / (time.perf_counter() - start)))
    timings = {name: [] for name in fns}
    for _ in range(REPEATS):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            sync()
            timings[name].append((time.perf_counter() - start) / calls[name])
    return {name: statistics.median(t) for name, t in timings.items()}


def main() -> None:
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = write_random_smpl_model(Path(tmp) / "SMPL_NEUTRAL.pkl", seed=0)
        for device in devices:
            fast = SMPLBody.from_path(path).to(device)
            skeleton = SkeletonBody().to(device)
            with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning about 10 betas
                reference = smplx.SMPL(str(path)).to(device)
            for batch in BATCHES:
                g = torch.Generator().manual_seed(batch)
                rotmats = axis_angle_to_matrix(torch.randn(batch, 24, 3, generator=g)).to(device)
                betas = torch.randn(batch, 10, generator=g).to(device)
                transl = torch.randn(batch, 3, generator=g).to(device)
                with torch.no_grad():
                    diff = (fast(rotmats, betas, transl).keypoints
                            - smplx_keypoints(reference, rotmats, betas, transl)).abs().max().item()
                    seconds = median_seconds({
                        "smplx.SMPL full forward": lambda: smplx_keypoints(reference, rotmats, betas, transl),
                        "k2m smpl fast path": lambda: fast(rotmats, betas, transl).keypoints,
                        "k2m skeleton": lambda: skeleton(rotmats, betas, transl).keypoints,
                    }, device)
                base = seconds["smplx.SMPL full forward"]
                for backend, s in seconds.items():
                    rows.append((device.type, str(batch), backend, f"{batch / s:,.0f}", f"{base / s:.1f}×",
                                 f"{diff:.1e} m" if backend == "k2m smpl fast path" else "—"))

    header = ("device", "batch", "backend", "frames/s", "vs smplx", "max Δ vs smplx")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    print(f"COCO-17 keypoints per second (torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          "float32, generated SMPL-format model)")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.rjust(w) if i in (1, 3, 4) else c.ljust(w)
                                for i, (c, w) in enumerate(zip(row, widths))) + " |")


if __name__ == "__main__":
    main()
