"""Pose-estimator outputs (+ captions) → the dataset file of docs/design.md#dataset (paper §4, A.2).

The pipeline, one module per step::

    formats/     read (and write) keypoint files → `Detections` of one video
    tracking     largest person per frame, identity kept → `PersonRun`s of consecutive frames
    segment      resample a run to 30 fps; cut valid frames into 2–10 s pieces
    filters      per-frame validity (confidence, box size, speed, acceleration, camera) and the
                 stationary check of a piece
    video        frame size / fps / camera movement read from a matching video file
    captions     CSV / JSONL captions keyed by video or clip id
    pipeline     discovery, workers, shards, streaming into `DatasetWriter`, the report
    info, validate, merge   `k2m data info|validate|merge`

Nothing here imports torch.
"""
