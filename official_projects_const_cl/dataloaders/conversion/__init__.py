"""Converters of video datasets into the TFRecords the input pipelines read."""
