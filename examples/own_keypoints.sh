#!/usr/bin/env bash
# Train K2M on your own 2D keypoints: an OpenPose output folder + captions → a model → motions.
#   bash examples/own_keypoints.sh [WORK_DIR] [STEPS]
# Here the "pose estimator output" is made by `k2m data synth --formats openpose` so the script
# runs anywhere; replace it with your folder of OpenPose JSON files (one per frame, one folder per
# video) and a captions file (CSV or JSONL: video id, caption). STEPS=300 runs in about 10 minutes
# on 2 CPU cores and gives a rough model; use thousands (and --preset paper on a GPU) for real work.
set -euo pipefail
work="${1:-own-keypoints}"
steps="${2:-300}"

k2m data synth --out "$work/estimator" --clips 300 --formats openpose --size 1920x1080 --seed 3

k2m preprocess "$work/estimator/keypoints/openpose" --captions "$work/estimator/captions.jsonl" \
    --size 1920x1080 --fps 30 --out "$work/data.h5" --workers 2 --no-lower-body --min-visible 0.4
k2m data info "$work/data.h5"

k2m train vq --data "$work/data.h5" --out "$work/model/vq" --preset cpu --adapter none \
    --steps "$steps" --set train.lr=0.001 --force
k2m eval recon "$work/model/vq" --split test
k2m data tokenize "$work/data.h5" --tokenizer "$work/model/vq"
k2m data encode-text "$work/data.h5" --encoder minilm
for kind in transformer residual length; do
    k2m train "$kind" --data "$work/data.h5" --tokenizer "$work/model/vq" --out "$work/model/$kind" \
        --preset cpu --encoder minilm --steps "$steps" --force
done
k2m plot "$work/model/transformer"

k2m gen "a person jumps forward" "someone waves" --model "$work/model" --out "$work/motions" --format npz,mp4
