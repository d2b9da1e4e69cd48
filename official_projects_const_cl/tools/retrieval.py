"""Nearest-neighbour video retrieval from a pretraining checkpoint.

  python -m official_projects_const_cl.tools.retrieval \
    --experiment=const_cl_linear_eval_ucf101 \
    --init_checkpoint=/runs/const_cl_k400 \
    --params_override=task.train_data.input_path=...,task.validation_data.input_path=...

No training: the recognition experiment only says where the videos are and
how the backbone is built. Its validation videos are the queries and its
training videos the gallery. A video's feature is the mean over
`task.retrieval.num_test_clips x num_test_crops` views (default 10 clips,
center crop, at the validation resolution) of the globally pooled res5
features (the pretrained `res5_g` of ConST-CL, the res5 of CVRL); neighbours
by cosine similarity; R@1/5/10/20 as in VCLR Table 4
(`evaluation/retrieval.py`). Results are printed and written as JSON.
Runs on one device (the default strategy). Exit status: 0, or 2 with one
`ERROR:` line for a bad flag, config or record (`errors.py`).
"""

import json
import os
import time
from typing import Any, Dict, Optional, Tuple

from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from official.core import config_definitions as cfg
from official_projects_const_cl import errors
from official_projects_const_cl import registry_imports  # pylint: disable=unused-import
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.dataloaders import recognition_input
from official_projects_const_cl.evaluation import retrieval
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import recognition

FLAGS = flags.FLAGS


def extract_video_features(model: Any, dataset: tf.data.Dataset,
                           log_every: int = 20
                           ) -> Tuple[np.ndarray, np.ndarray]:
  """Mean pooled backbone features over the views of every video.

  Args:
    model: a `VideoClassifier`.
    dataset: batches of {'image': [B, V, T, H, W, 3], 'label': [B]}.
    log_every: log progress every this many batches.

  Returns:
    features float32 [N, C] and labels int [N].
  """
  @tf.function
  def features_of(images):
    num_views = tf.shape(images)[1]
    pooled = model.pooled_features(recognition.merge_views(images),
                                   training=False)
    pooled = tf.reshape(pooled, [-1, num_views, tf.shape(pooled)[-1]])
    return tf.reduce_mean(pooled, axis=1)

  features, labels = [], []
  for i, batch in enumerate(dataset):
    features.append(features_of(batch['image']).numpy())
    labels.append(batch['label'].numpy())
    if log_every and (i + 1) % log_every == 0:
      logging.info('Embedded %d videos.', sum(len(l) for l in labels))
  if not features:
    return np.zeros([0, 0], np.float32), np.zeros([0], np.int64)
  return np.concatenate(features), np.concatenate(labels)


def run_retrieval(params: cfg.ExperimentConfig,
                  init_checkpoint: Optional[str]) -> Dict[str, Any]:
  """R@k of `params`' validation videos against its training videos.

  Args:
    params: a recognition experiment config.
    init_checkpoint: pretraining model_dir / checkpoint; None or '' keeps
      the random initialization (a baseline).

  Returns:
    {'R@k': ..., 'num_queries', 'num_gallery', 'init_checkpoint', 'seconds'}.
  """
  start = time.time()
  task_cfg = params.task.replace(init_checkpoint=init_checkpoint or None)
  task = recognition.RecognitionTask(task_cfg)
  model = task.build_model()
  task.initialize(model)
  views = dict(num_test_clips=task_cfg.retrieval.num_test_clips,
               num_test_crops=task_cfg.retrieval.num_test_crops,
               is_training=False, drop_remainder=False, cache=False)
  queries_cfg = task_cfg.validation_data.replace(**views)
  gallery_cfg = queries_cfg.replace(input_path=task_cfg.train_data.input_path)
  for data in (queries_cfg, gallery_cfg):
    demo_data.prepare_data(data)
  gallery = extract_video_features(
      model, recognition_input.build_recognition_dataset(gallery_cfg))
  logging.info('Gallery: %d training videos.', len(gallery[1]))
  queries = extract_video_features(
      model, recognition_input.build_recognition_dataset(queries_cfg))
  logging.info('Queries: %d validation videos.', len(queries[1]))
  results = retrieval.recall_at_k(queries[0], queries[1], gallery[0],
                                  gallery[1], ks=task_cfg.retrieval.recall_at)
  results['init_checkpoint'] = init_checkpoint or None
  results['seconds'] = round(time.time() - start, 1)
  return results


def format_results(results: Dict[str, Any]) -> str:
  recalls = '  '.join(f'{k} {100 * v:.1f}%' for k, v in results.items()
                      if k.startswith('R@'))
  return (f'Retrieval ({results["num_queries"]} queries, '
          f'{results["num_gallery"]} gallery videos): {recalls}')


def define_flags():
  flags.DEFINE_string('experiment', 'const_cl_linear_eval_demo',
                      'A registered recognition experiment (data + backbone).')
  flags.DEFINE_string('init_checkpoint', None,
                      'Pretraining model_dir or checkpoint prefix; empty '
                      'for a randomly initialized backbone (baseline).')
  flags.DEFINE_string('params_override', '',
                      'Model Garden params override (yaml or a.b=c).')
  flags.DEFINE_string('output_json', '',
                      'Where to write the results (default: '
                      '<init_checkpoint dir>/retrieval_<experiment>.json).')
  flags.mark_flag_as_required('init_checkpoint')


def main(_):
  params = experiment_runner.experiment_config(
      FLAGS.experiment, FLAGS.params_override, mode='eval')
  results = run_retrieval(params, FLAGS.init_checkpoint)
  output = FLAGS.output_json
  if not output and FLAGS.init_checkpoint:
    root = (FLAGS.init_checkpoint if tf.io.gfile.isdir(FLAGS.init_checkpoint)
            else os.path.dirname(FLAGS.init_checkpoint))
    output = os.path.join(root, f'retrieval_{FLAGS.experiment}.json')
  if output:
    with tf.io.gfile.GFile(output, 'w') as f:
      json.dump(results, f, indent=2)
    logging.info('Wrote %s', output)
  print(format_results(results), flush=True)


if __name__ == '__main__':
  define_flags()
  errors.run_app(main)
