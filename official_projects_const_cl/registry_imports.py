"""The one module that registers every config, task, model and backbone.

`train.py`, the tools, `bench/` and the tests import this module explicitly
(importing the package does not), so a missing import cannot surface as
"collection is never registered" or an unknown experiment name.
"""

# pylint: disable=unused-import
from official_projects_const_cl.configs import const_cl as const_cl_configs
from official_projects_const_cl.configs import localization as localization_configs
from official_projects_const_cl.configs import recognition as recognition_configs
from official_projects_const_cl.configs import tracking as tracking_configs
from official_projects_const_cl.configs import vclr as vclr_configs
from official_projects_const_cl.modeling import const_cl_model
from official_projects_const_cl.modeling import vclr_model
from official_projects_const_cl.modeling import video_classifier
from official_projects_const_cl.modeling.backbones import resnet_3d_y
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import localization
from official_projects_const_cl.tasks import pretrain
from official_projects_const_cl.tasks import recognition
from official_projects_const_cl.tasks import tracking
from official_projects_const_cl.tasks import vclr_pretrain
# pylint: enable=unused-import


def registered_experiments():
  """Names of this project's registered experiments, sorted."""
  return experiment_runner.project_experiments()
