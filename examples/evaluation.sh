#!/usr/bin/env bash
# Evaluation walk-through: the paper's text-to-motion protocol at the 2D level, physics metrics,
# and the tokenizer's reconstruction, on a model folder and its dataset.
#   bash examples/evaluation.sh MODEL_DIR DATASET.h5 [WORK_DIR]
# e.g. after examples/own_keypoints.sh: bash examples/evaluation.sh own-keypoints/model own-keypoints/data.h5
set -euo pipefail
model="$1"
data="$2"
work="${3:-evaluation}"

# 1. The evaluator (Guo et al.'s text and motion encoders on normalised 2D keypoints), trained on
#    the same dataset with early stopping; its embeddings define FID, R-precision, MM-Dist, ….
k2m eval train-evaluator "$data" --out "$work/evaluator" --preset cpu --force

# 2. Generate for the test captions at their true lengths, project to 2D with the paper's camera,
#    compare with the ground truth: report.md, report.json and plots (20 repetitions by default).
k2m eval t2m "$model" --evaluator "$work/evaluator" --data "$data" --out "$work/t2m" --repetitions 5
cat "$work/t2m/report.md"

# 3. Physics without learned weights: foot skating, jitter, ground penetration / float,
#    joint-limit violations — of generated motions and of any AMASS-style files.
k2m gen --prompts <(printf 'a person walks forward #150\nsomeone jumps twice #120\na man kicks #90\n') \
    --model "$model" --out "$work/motions" --format npz
k2m eval physics "$work/motions" --out "$work/physics.json"

# 4. The tokenizer alone: 2D reprojection error, code usage, 3D error where ground truth exists.
k2m eval recon "$model/vq" --data "$data" --split test

# MotionCritic scores need its released checkpoint (motioncritic_pre.pth, downloaded separately):
#   k2m eval critic "$work/motions" --checkpoint motioncritic_pre.pth
