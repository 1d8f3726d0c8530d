"""Synthetic data: procedural SMPL motions with captions (`motions`, `captions`) for tests and demos."""
