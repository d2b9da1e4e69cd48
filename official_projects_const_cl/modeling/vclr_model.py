"""The VCLR pretraining model (Kuang et al. ICCV 2021, §3 and appendix A.1).

`VclrModel` runs one backbone (the R3D with a single res5, as CVRL) on every
clip of an example, global-average-pools res5, and applies four MLP heads
of the same architecture without shared weights (A.1: FC -> ReLU -> FC to
a 128-d embedding), one per loss, plus a linear order classifier.

Which clip embeddings feed which term (B videos, K clips per tuple; the
choice follows §3.1-3.3 and the authors' release, github.com/amazon-science/
video-contrastive-learning @ 4fb66c3):

* video-level (§3.2): the pooled features of each tuple's K clips are
  averaged ("average operation for consensus", §4.2; the release averages
  before its head, models/resnet_mlp.py lines 259-261), then the video
  head: 'anchor_clips' and 'positive_clips' [B, 1, D]
  (`vclr.video_infonce` with K = 1).
* inter-frame (eq. 2): the anchor frame is the anchor tuple's clip of
  segment 0 (slot `anchor_slot`); its positives are a second augmentation
  of the same clip ('anchor_second_view', from the parser) and the other
  K - 1 clips of the anchor tuple: 'inter_anchor' [B, D],
  'inter_positives' [B, K, D] (second view first). The release takes its
  three SeCo frames from the anchor tuple too (its `queue_images`, the
  first or last segment's frame as anchor, dataset/dataset_kinetics.py
  lines 168-177); here always segment 0.
* intra-frame (eq. 3): the same clips through the intra head; positive the
  second view, negatives the other K - 1 clips of the anchor tuple:
  'intra_anchor' [B, D], 'intra_positive' [B, D], 'intra_negatives'
  [B, K - 1, D] (the release: train_vclr.py lines 124-125).
* temporal order (§3.3): the order head on each of the 2K clips (in their
  shown, possibly shuffled, order), each embedding L2-normalized (the
  release, models/resnet_mlp.py line 265), concatenated anchor tuple first
  ([B, 2 K D]; the release's `cat([query, key])`, line 281) and the linear
  classifier to 4 logits: 'order_logits' [B, 4], the classes of
  `vclr.order_label`.

Every clip runs through the one backbone in a single batch
[2 B K + B, T, H, W, 3] (anchor tuples, positive tuples, second views), so
batch-norm statistics are shared by all of them. Outputs are float32 and
not normalized except the order embeddings (the losses normalize).
"""

from typing import Any, Dict, Mapping, Optional

import tensorflow as tf
import tf_keras

from official.vision.modeling import backbones
from official_projects_const_cl.losses import vclr as vclr_losses
from official_projects_const_cl.modeling.backbones import resnet_3d_y
from official_projects_const_cl.modeling.heads import mlp

# Input keys (the parser's 'vclr_segments' outputs, `anchor_slot` derived
# from 'order_permutation' by `anchor_slot`).
ANCHOR = 'anchor'
POSITIVE = 'positive'
ANCHOR_SECOND_VIEW = 'anchor_second_view'
ANCHOR_SLOT = 'anchor_slot'
# Output keys: the arguments of `losses.vclr.vclr_loss`, and the features.
LOSS_INPUTS = ('anchor_clips', 'positive_clips', 'inter_anchor',
               'inter_positives', 'intra_anchor', 'intra_positive',
               'intra_negatives', 'order_logits')
VIDEO_FEATURES = 'video_features'
HEAD_NAMES = ('video_head', 'inter_head', 'intra_head', 'order_head')


def anchor_slot(order_permutation: tf.Tensor) -> tf.Tensor:
  """Slot of the anchor tuple that shows segment 0: int32 [B].

  Args:
    order_permutation: int [B, 2, K] (the parser's, row 0 the anchor
      tuple): slot j shows segment `order_permutation[b, 0, j]`.
  """
  is_first = tf.equal(tf.cast(order_permutation[:, 0], tf.int32), 0)
  return tf.argmax(tf.cast(is_first, tf.int32), axis=-1,
                   output_type=tf.int32)


@tf_keras.utils.register_keras_serializable(package='ConstCL')
class VclrModel(tf_keras.Model):
  """Backbone + video, inter-frame, intra-frame and order heads."""

  def __init__(self,
               backbone: resnet_3d_y.ResNet3DY,
               video_head: mlp.MLPHead,
               inter_head: mlp.MLPHead,
               intra_head: mlp.MLPHead,
               order_head: mlp.MLPHead,
               num_clips: int = 3,
               kernel_regularizer: Optional[
                   tf_keras.regularizers.Regularizer] = None,
               **kwargs):
    """Initializes the model.

    Args:
      backbone: The backbone; must output a single 'res5'.
      video_head: Head of the video-level term.
      inter_head: Head of the inter-frame term.
      intra_head: Head of the intra-frame term.
      order_head: Head of the temporal-order term.
      num_clips: K, clips per tuple (the order classifier takes 2 K
        embeddings).
      kernel_regularizer: Regularizer of the order classifier's kernel.
      **kwargs: Passed to `tf_keras.Model`.

    Raises:
      ValueError: on a backbone without a single res5, or K < 1.
    """
    super().__init__(**kwargs)
    specs = backbone.output_specs
    if 'res5' not in specs or 'res5_r' in specs:
      raise ValueError('VclrModel: the backbone must output a single res5 '
                       '(branch_res5=False), got endpoints '
                       f'{sorted(specs)}.')
    if num_clips < 1:
      raise ValueError(f'VclrModel: num_clips must be >= 1, got {num_clips}.')
    self._backbone = backbone
    self._video_head = video_head
    self._inter_head = inter_head
    self._intra_head = intra_head
    self._order_head = order_head
    self._num_clips = num_clips
    self._kernel_regularizer = kernel_regularizer
    self._order_classifier = tf_keras.layers.Dense(
        vclr_losses.NUM_ORDER_CLASSES, kernel_regularizer=kernel_regularizer,
        dtype='float32', name='order_classifier')

  @property
  def backbone(self) -> resnet_3d_y.ResNet3DY:
    return self._backbone

  @property
  def num_clips(self) -> int:
    return self._num_clips

  @property
  def heads(self) -> Dict[str, tf_keras.layers.Layer]:
    return {'video_head': self._video_head, 'inter_head': self._inter_head,
            'intra_head': self._intra_head, 'order_head': self._order_head,
            'order_classifier': self._order_classifier}

  @property
  def checkpoint_items(self) -> Dict[str, tf.Module]:
    """Items a downstream task restores: only the backbone."""
    return {'backbone': self._backbone}

  def _check_inputs(self, inputs: Mapping[str, tf.Tensor]) -> None:
    missing = [k for k in (ANCHOR, POSITIVE, ANCHOR_SECOND_VIEW, ANCHOR_SLOT)
               if k not in inputs]
    if missing:
      raise KeyError(f'VclrModel: inputs lack {missing}; got keys '
                     f'{sorted(inputs)}.')
    for key in (ANCHOR, POSITIVE):
      shape = inputs[key].shape
      if shape.rank != 6 or shape[1] != self._num_clips:
        raise ValueError(
            f'VclrModel: inputs[{key!r}] must be [B, K={self._num_clips}, '
            f'T, H, W, 3], got shape {shape}.')
    clip = inputs[ANCHOR].shape[2:]
    second = inputs[ANCHOR_SECOND_VIEW].shape
    if second.rank != 5 or not second[1:].is_compatible_with(clip):
      raise ValueError(
          f'VclrModel: inputs[{ANCHOR_SECOND_VIEW!r}] must be [B] + the '
          f'clip shape {clip}, got shape {second}.')

  def call(self, inputs: Mapping[str, tf.Tensor],
           training: Optional[bool] = None) -> Dict[str, tf.Tensor]:
    """Embeds every clip and returns the inputs of `vclr.vclr_loss`.

    Args:
      inputs: 'anchor', 'positive' [B, K, T, H, W, 3]; 'anchor_second_view'
        [B, T, H, W, 3]; 'anchor_slot' int [B] (slot of 'anchor' showing
        the clip the second view augments again).
      training: Training mode.

    Returns:
      Float32 dict: the `LOSS_INPUTS` (module doc) and 'video_features'
      [B, C], the averaged pooled res5 of the anchor tuple's clips.
    """
    self._check_inputs(inputs)
    k = self._num_clips
    anchor, positive = inputs[ANCHOR], inputs[POSITIVE]
    clip_shape = tf.shape(anchor)[2:]
    batch = tf.shape(anchor)[0]
    flat = lambda x: tf.reshape(x, tf.concat([[-1], clip_shape], 0))
    clips = tf.concat([flat(anchor), flat(positive),
                       tf.cast(inputs[ANCHOR_SECOND_VIEW], anchor.dtype)],
                      axis=0)  # [2BK + B, T, H, W, 3]
    res5 = self._backbone(clips, training=training)['res5']
    pooled = tf.reduce_mean(tf.cast(res5, tf.float32), axis=[1, 2, 3])
    channels = pooled.shape[-1]
    anchor_feat = tf.reshape(pooled[:batch * k], [batch, k, channels])
    positive_feat = tf.reshape(pooled[batch * k:2 * batch * k],
                               [batch, k, channels])
    second_feat = pooled[2 * batch * k:]

    # Video level: consensus (mean) of the tuple's clips, then the head.
    video_anchor = tf.reduce_mean(anchor_feat, axis=1)
    video_positive = tf.reduce_mean(positive_feat, axis=1)
    video_emb = self._video_head(tf.concat([video_anchor, video_positive], 0),
                                 training=training)
    video_a, video_p = tf.split(tf.cast(video_emb, tf.float32), 2, axis=0)

    # Frame level: [anchor clip, its second view, the other K - 1 clips].
    slot = tf.cast(inputs[ANCHOR_SLOT], tf.int32)
    others = (slot[:, tf.newaxis] + 1 + tf.range(k - 1)[tf.newaxis]) % k
    frames = tf.concat([
        tf.gather(anchor_feat, slot[:, tf.newaxis], axis=1, batch_dims=1),
        second_feat[:, tf.newaxis],
        tf.gather(anchor_feat, others, axis=1, batch_dims=1)],
                       axis=1)  # [B, K + 1, C]
    inter = tf.cast(self._inter_head(frames, training=training), tf.float32)
    intra = tf.cast(self._intra_head(frames, training=training), tf.float32)

    # Order: normalized clip embeddings, anchor tuple first, concatenated.
    order_emb = tf.cast(self._order_head(
        tf.concat([anchor_feat, positive_feat], axis=1), training=training),
                        tf.float32)  # [B, 2K, D]
    order_emb = tf.math.l2_normalize(order_emb, axis=-1)
    order_in = tf.reshape(order_emb, [batch, 2 * k * order_emb.shape[-1]])
    order_logits = self._order_classifier(order_in)
    return {
        'anchor_clips': video_a[:, tf.newaxis],
        'positive_clips': video_p[:, tf.newaxis],
        'inter_anchor': inter[:, 0],
        'inter_positives': inter[:, 1:],
        'intra_anchor': intra[:, 0],
        'intra_positive': intra[:, 1],
        'intra_negatives': intra[:, 2:],
        'order_logits': tf.cast(order_logits, tf.float32),
        VIDEO_FEATURES: video_anchor,
    }

  def build_heads(self) -> None:
    """Creates all head weights from the backbone's output specs.

    The weights get the names and shapes of a forward pass (called inside
    the model's name scope, as `ConstClModel.build_heads`), so a caller can
    count parameters, restore a checkpoint or create optimizer slots before
    the first step. Idempotent.
    """
    if all(layer.built for layer in self.heads.values()):
      return
    channels = self._backbone.output_specs['res5'][-1]
    with tf.name_scope(self.name):
      token = tf.zeros([1, channels])
      for head in (self._video_head, self._inter_head, self._intra_head):
        head(token, training=False)
      order = self._order_head(token, training=False)
      self._order_classifier(
          tf.zeros([1, 2 * self._num_clips * order.shape[-1]]))
    self.built = True

  def get_config(self) -> Dict[str, Any]:
    serialize = tf_keras.utils.serialize_keras_object
    return {
        'backbone': serialize(self._backbone),
        **{name: serialize(getattr(self, f'_{name}')) for name in HEAD_NAMES},
        'num_clips': self._num_clips,
        'kernel_regularizer': serialize(self._kernel_regularizer),
        'name': self.name,
    }

  @classmethod
  def from_config(cls, config: Mapping[str, Any], custom_objects=None):
    config = dict(config)
    for key in ('backbone',) + HEAD_NAMES:
      config[key] = tf_keras.utils.deserialize_keras_object(
          config[key], custom_objects=custom_objects)
    if config.get('kernel_regularizer') is not None:
      config['kernel_regularizer'] = tf_keras.regularizers.get(
          config['kernel_regularizer'])
    return cls(**config)


def build_vclr_model(
    input_specs: tf_keras.layers.InputSpec,
    model_config: Any,
    num_clips: int,
    l2_regularizer: Optional[tf_keras.regularizers.Regularizer] = None
) -> VclrModel:
  """Builds a `VclrModel` from a `configs.vclr.VclrModel` config.

  The heads and the classifier run in float32 (the losses' softmaxes stay
  float32 under mixed precision, docs/choices.md); the backbone follows the
  global policy.

  Args:
    input_specs: `InputSpec` of one clip batch `[N, T, H, W, 3]`.
    model_config: A `configs.vclr.VclrModel`. `head.num_hidden_channels`
      -1 takes the backbone's res5 channels.
    num_clips: K, clips per tuple (`train_data.vclr_num_segments`).
    l2_regularizer: Kernel regularizer of the backbone and heads.

  Returns:
    The model (heads not built; call `build_heads`).
  """
  backbone = backbones.factory.build_backbone(
      input_specs=input_specs,
      backbone_config=model_config.backbone,
      norm_activation_config=model_config.norm_activation,
      l2_regularizer=l2_regularizer)
  if 'res5' not in backbone.output_specs:
    raise ValueError('model.backbone.resnet_3d_y.branch_res5 must be False '
                     'for VCLR (a single res5); got endpoints '
                     f'{sorted(backbone.output_specs)}.')
  head_cfg = model_config.head
  hidden = head_cfg.num_hidden_channels
  if hidden == -1:
    hidden = backbone.output_specs['res5'][-1]
  heads = {
      name: mlp.MLPHead(
          num_hidden_layers=1, num_hidden_channels=hidden,
          num_output_channels=head_cfg.num_output_channels,
          activation=model_config.norm_activation.activation,
          use_batch_norm=False, kernel_regularizer=l2_regularizer,
          dtype='float32', name=name)
      for name in HEAD_NAMES}
  return VclrModel(backbone=backbone, num_clips=num_clips,
                   kernel_regularizer=l2_regularizer, name='vclr_model',
                   **heads)
