"""Datasets: the HDF5 clip file of docs/design.md#dataset (writer, lazy reader, validation)."""
