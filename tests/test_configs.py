"""Every registered experiment validates and builds; paper recipes load."""

import glob
import json
import os

import pytest
import tensorflow as tf

from official.core import exp_factory
from official.core import task_factory
from official.modeling import hyperparams
from official_projects_const_cl import registry_imports

EXPERIMENTS = registry_imports.registered_experiments()
YAML_DIR = os.path.join(os.path.dirname(__file__), '..',
                        'official_projects_const_cl', 'configs', 'yaml')


def test_all_issue_experiments_are_registered():
  assert set(EXPERIMENTS) >= {
      'const_cl_pretrain_k400', 'const_cl_pretrain_k400_100k',
      'cvrl_pretrain_k400', 'const_cl_pretrain_demo', 'cvrl_pretrain_demo',
      'const_cl_linear_eval_k400', 'const_cl_linear_eval_ucf101',
      'const_cl_linear_eval_hmdb51', 'const_cl_finetune_ucf101',
      'const_cl_finetune_hmdb51', 'const_cl_linear_eval_demo',
      'const_cl_finetune_demo', 'const_cl_ava_v22', 'const_cl_ava_kinetics',
      'const_cl_action_localization_demo', 'const_cl_tracking_got10k',
      'const_cl_tracking_demo'}


# name: (classes, epochs, batch, LR, weight decay, dropout, linear, videos)
RECOGNITION_RECIPES = {
    'const_cl_linear_eval_k400': (400, 100, 1024, 32.0, 0.0, 0.0, True,
                                  240_000),
    'const_cl_linear_eval_ucf101': (101, 50, 128, 0.84, 0.0, 0.0, True, 9537),
    'const_cl_linear_eval_hmdb51': (51, 50, 128, 0.84, 0.0, 0.0, True, 3570),
    'const_cl_finetune_ucf101': (101, 50, 128, 0.72, 1e-5, 0.5, False, 9537),
    'const_cl_finetune_hmdb51': (51, 50, 128, 0.84, 1e-5, 0.5, False, 3570),
}


@pytest.mark.parametrize('name', sorted(RECOGNITION_RECIPES))
def test_recognition_paper_recipes(name):
  classes, epochs, batch, lr, wd, dropout, linear, videos = (
      RECOGNITION_RECIPES[name])
  exp = exp_factory.get_exp_config(name)
  t = exp.task
  assert t.train_data.num_classes == t.validation_data.num_classes == classes
  assert t.train_data.global_batch_size == batch
  assert t.train_data.feature_shape == (32, 224, 224, 3)
  assert t.train_data.temporal_stride == t.validation_data.temporal_stride == 2
  assert t.train_data.aug_flip
  assert t.validation_data.feature_shape == (32, 256, 256, 3)
  assert t.validation_data.min_image_size == 256
  assert (t.validation_data.num_test_clips,
          t.validation_data.num_test_crops) == (10, 3)
  assert exp.trainer.train_steps == epochs * (videos // batch)
  opt = exp.trainer.optimizer_config
  assert opt.optimizer.type == 'sgd' and opt.optimizer.sgd.momentum == 0.9
  assert opt.learning_rate.cosine.initial_learning_rate == lr
  assert t.losses.l2_weight_decay == wd and t.model.dropout_rate == dropout
  assert t.model.freeze_backbone == linear == t.model.normalize_features
  assert t.model.res5_branch == 'res5_g'
  assert t.model.backbone.resnet_3d_y.branch_res5  # A ConST-CL checkpoint.


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_experiment_validates_and_builds(name):
  exp = exp_factory.get_exp_config(name)
  exp.validate()
  task = task_factory.get_task(exp.task)
  if 'demo' not in name and 'feature_shape' in exp.task.train_data.as_dict():
    # Paper-size: build the variables only (no 224px forward pass).
    exp.task.train_data.feature_shape = (16, 224, 224, 3)
  model = task.build_model()
  if hasattr(model, 'build_heads'):  # Pretraining.
    model.build_heads()
  else:  # Downstream: one res5 (the pretrained res5_g or res5_r).
    tracking = hasattr(model, 'embedder')
    backbone = model.embedder.backbone if tracking else model.backbone
    assert sorted(backbone.output_specs) == ['res2', 'res3', 'res4', 'res5']
    if tracking:  # Exemplar / search frame stacks (2n + 1 frames).
      frames = 2 * exp.task.model.siamfc.num_neighbors + 1
      logits = model({'exemplar': tf.zeros([1, frames, 16, 16, 3]),
                      'search': tf.zeros([1, frames, 32, 32, 3])})
      assert logits.shape == (1, 3, 3)  # Stride 8: 2 x 2 in 4 x 4 -> 3 x 3.
      assert backbone.get_config()['tracking_dilation']
    else:
      num_frames = exp.task.train_data.feature_shape[0]
      clip = tf.zeros([1, num_frames, 32, 32, 3])  # Tiny: builds the head.
      if hasattr(model, 'head'):  # Localization: clip and person boxes.
        logits = model({'image': clip,
                        'boxes': tf.constant([[[0., 0., 1., 1.]]])})
      else:
        logits = model(clip)
      assert logits.shape[-1] == exp.task.train_data.num_classes
  assert model.count_params() > 0
  assert 'backbone' in model.checkpoint_items


@pytest.mark.parametrize('name,paper_millions', [
    ('const_cl_pretrain_k400', 71.7), ('const_cl_pretrain_k400_100k', 71.7),
    ('cvrl_pretrain_k400', 44.6)])
def test_paper_parameter_counts_from_experiments(name, paper_millions):
  """Paper Table 3 (SSL heads included), within 0.5%."""
  exp = exp_factory.get_exp_config(name)
  model = task_factory.get_task(exp.task).build_model()
  model.build_heads()
  count = model.count_params()
  assert abs(count / 1e6 - paper_millions) / paper_millions < 0.005, count


def test_paper_recipe_numbers():
  exp = exp_factory.get_exp_config('const_cl_pretrain_k400')
  t = exp.task
  assert t.train_data.global_batch_size == 1024
  assert t.train_data.feature_shape == (16, 224, 224, 3)
  assert t.train_data.temporal_stride == 2
  assert t.train_data.num_boxes == 8 and t.train_data.region_source == 'random'
  assert (t.train_data.aug_min_area_ratio, t.train_data.aug_max_area_ratio) == (
      0.3, 1.0)
  assert t.model.context_length == 5 and t.model.use_region_loss
  assert t.model.norm_activation.use_sync_bn
  rh = t.model.region_head
  assert (rh.num_layers, rh.num_heads, rh.hidden_channels) == (3, 3, 128)
  assert (t.losses.global_temperature, t.losses.region_temperature,
          t.losses.region_weight, t.losses.l2_weight_decay) == (0.1, 0.2, 0.01,
                                                                 1e-6)
  assert exp.trainer.train_steps == 200_000
  opt = exp.trainer.optimizer_config
  assert opt.optimizer.type == 'sgd' and opt.optimizer.sgd.momentum == 0.9
  assert opt.learning_rate.cosine.initial_learning_rate == 40.96
  # 5 epochs of ~240k clips at batch 1024.
  assert opt.warmup.linear.warmup_steps == 5 * (240_000 // 1024)
  assert exp_factory.get_exp_config(
      'const_cl_pretrain_k400_100k').trainer.train_steps == 100_000


def test_learning_rate_schedule_warmup_then_cosine_to_zero():
  exp = exp_factory.get_exp_config('const_cl_pretrain_k400')
  task = task_factory.get_task(exp.task)
  opt = task.create_optimizer(exp.trainer.optimizer_config, exp.runtime)
  lr = opt.learning_rate
  w = exp.trainer.optimizer_config.warmup.linear.warmup_steps
  total = exp.trainer.train_steps
  assert float(lr(0)) == pytest.approx(0.0, abs=1e-6)
  assert float(lr(w // 2)) == pytest.approx(40.96 / 2, rel=1e-3)
  assert float(lr(w)) == pytest.approx(40.96, rel=1e-4)
  mid = w + (total - w) // 2
  assert float(lr(mid)) == pytest.approx(40.96 / 2, rel=1e-3)
  assert float(lr(total)) == pytest.approx(0.0, abs=1e-4)


def test_cvrl_has_no_region_branch():
  exp = exp_factory.get_exp_config('cvrl_pretrain_k400')
  assert not exp.task.model.use_region_loss
  assert not exp.task.model.backbone.resnet_3d_y.branch_res5


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(YAML_DIR,
                                                               '*.yaml'))))
def test_paper_yaml_loads_and_matches_the_factory(path):
  name = os.path.splitext(os.path.basename(path))[0]
  with open(path) as f:
    header = f.read()
  assert f'--experiment={name}' in header and f'--config_file=' in header
  expected = exp_factory.get_exp_config(name)
  exp = exp_factory.get_exp_config(name)
  exp = hyperparams.override_params_dict(exp, path, is_strict=True)
  exp.validate()
  # yaml gives lists where the factory has tuples; compare as JSON.
  as_json = lambda e: json.loads(json.dumps(e.as_dict()))
  assert as_json(exp) == as_json(expected)


def test_context_longer_than_feature_map_is_rejected():
  exp = exp_factory.get_exp_config('const_cl_pretrain_demo')
  exp.task.model.context_length = 7  # 8 frames / stem stride 2 = 4 slices.
  with pytest.raises(ValueError, match='context_length=7 exceeds the 4'):
    task_factory.get_task(exp.task).build_model()


def test_bad_temporal_sampling_is_rejected():
  exp = exp_factory.get_exp_config('const_cl_pretrain_demo')
  exp.task.temporal_sampling = 'middle'
  with pytest.raises(ValueError, match='temporal_sampling'):
    task_factory.get_task(exp.task).build_model()
