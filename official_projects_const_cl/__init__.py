"""ConST-CL (CVPR 2022) in TensorFlow Model Garden style.

Importing the package registers every experiment, task, model and backbone
(see `registry_imports`).
"""

from official_projects_const_cl import registry_imports  # pylint: disable=unused-import
