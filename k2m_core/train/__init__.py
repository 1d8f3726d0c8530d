"""Training infrastructure shared by every trainer: configs, run directories, checkpoints,
distributed setup, batch sampling and the loop itself."""
