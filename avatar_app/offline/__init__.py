"""Offline commands: the stages of the pipeline on a file clock, written to an MP4."""
