#!/usr/bin/env bash
# Quickstart: motions from text with the bundled k2m-mini model, then a side-by-side video.
#   bash examples/quickstart.sh [OUT_DIR]        (k2m must be on PATH: pip install -e .)
set -euo pipefail
out="${1:-quickstart-out}"

# One motion, 5 s at 30 fps: SMPL as AMASS-style .npz, a .bvh for Blender/Maya, an .mp4 preview.
k2m gen "a man jumps" --frames 150 --out "$out" --format npz,bvh,mp4

# Paraphrases of the actions it was trained on; lengths from the model's length estimator.
k2m gen "someone leaps" "a person hops up and down" "a man walks slowly to the left" \
    --out "$out" --format npz --seed 1

# The three side by side, each with its caption, on a ground grid with a following camera.
k2m render "$out/someone_leaps_00.npz" "$out/a_person_hops_up_and_down_00.npz" \
    "$out/a_man_walks_slowly_to_the_left_00.npz" --out "$out/paraphrases.mp4" --force

# Another frame rate for an animation tool that wants 60 fps.
k2m export "$out/a_man_jumps_00.npz" --to bvh --fps 60 --out "$out/60fps"
ls "$out" "$out/60fps"
