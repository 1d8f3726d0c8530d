#!/usr/bin/env bash
# From a video of a person to SMPL motion (.npz, .bvh) and a preview, offline, in one script:
#   bash examples/from_video.sh VIDEO [WORK_DIR] [FOV_DEGREES]
# 1. `k2m extract` finds the person in every frame with mediapipe's BlazePose (pip install 'k2m[video]');
# 2. `k2m preprocess` applies the paper's filters and cuts the 2-10 s clips a dataset would keep
#    (it needs captions, so this script writes one for the video);
# 3. `k2m lift` turns the video's keypoints into 3D through k2m-mini's motion tokenizer, one output
#    frame per video frame (.npz, .bvh and a preview .mp4);
# 4. `k2m render` draws the lifted motion from the side, where depth shows.
# FOV_DEGREES is the camera's field of view across the frame's long side when you know it (a phone's
# main camera: about 65); extract stores the focal length it gives, and lift projects with it.
set -euo pipefail
video="${1:?usage: bash examples/from_video.sh VIDEO [WORK_DIR] [FOV_DEGREES]}"
work="${2:-from-video}"
fov="${3:-65}"
name="$(basename "${video%.*}")"

k2m extract "$video" --out "$work/keypoints" --fov "$fov" --force

printf '{"video": "%s", "caption": "a person moves"}\n' "$name" > "$work/captions.jsonl"
if ! k2m preprocess "$work/keypoints" --captions "$work/captions.jsonl" --videos "$(dirname "$video")" \
        --out "$work/data.h5" --force; then
    echo "no 2-10 s clip passed the paper's filters (reasons above and in $work/data.report.json);" \
         "lifting the whole video anyway" >&2
fi

k2m lift "$work/keypoints/$name.jsonl" --tokenizer k2m-mini --out "$work/motion" --format npz,bvh,mp4 --force
motions=("$work"/motion/*.npz)
k2m render "${motions[0]}" --azimuth 90 --out "$work/$name.side.mp4" --force
echo "motion: $work/motion/ (.npz, .bvh, front preview .mp4); side view: $work/$name.side.mp4"
