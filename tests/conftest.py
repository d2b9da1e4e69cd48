"""Shared pytest set-up: quiet TensorFlow, register everything once."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# Sets the CPU kernel defaults before TensorFlow loads (package doc).
import official_projects_const_cl  # pylint: disable=unused-import,g-import-not-at-top,wrong-import-position
# Registers every experiment, task, model and backbone, as train.py does.
from official_projects_const_cl import registry_imports  # pylint: disable=unused-import,g-import-not-at-top,wrong-import-position
