"""Datasets: the HDF5 clip file of SPEC §4 (writer, lazy reader, validation)."""
