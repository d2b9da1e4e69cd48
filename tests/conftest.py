"""Shared pytest set-up: quiet TensorFlow, register everything once."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
