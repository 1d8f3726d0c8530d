"""From videos to keypoints: pose-estimator backends (`estimators`), the per-video extraction and
the two-pass scheme of paper A.2 (`run`), and accuracy against COCO ground truth (`score`)."""
