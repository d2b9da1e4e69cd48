"""Feature keys of the TFRecords this project reads and writes.

Layouts: docs/datasets.md.

Clips are `tf.train.SequenceExample`s in the layout of Model Garden's
`official/vision/dataloaders/video_input.py`; per-frame boxes follow the
MediaSequence `region/*` convention. Every loader, converter and the demo
world generator use these constants, so the formats cannot drift apart.
"""

# Feature lists (one entry per frame).
IMAGE_KEY = 'image/encoded'              # bytes: one JPEG per frame.
TIMESTAMP_KEY = 'image/timestamp'        # int64: microseconds.
BBOX_YMIN_KEY = 'region/bbox/ymin'       # float: normalized, any number.
BBOX_XMIN_KEY = 'region/bbox/xmin'
BBOX_YMAX_KEY = 'region/bbox/ymax'
BBOX_XMAX_KEY = 'region/bbox/xmax'
BBOX_KEYS = (BBOX_YMIN_KEY, BBOX_XMIN_KEY, BBOX_YMAX_KEY, BBOX_XMAX_KEY)
REGION_LABEL_KEY = 'region/label/index'  # int64, optional.
REGION_SCORE_KEY = 'region/bbox/score'   # float, optional.
REGION_TRACK_KEY = 'region/track/index'  # int64, optional.

# Context (one value per video).
LABEL_KEY = 'clip/label/index'           # int64, may hold several.
LABEL_TEXT_KEY = 'clip/label/text'       # bytes, optional.
MEDIA_ID_KEY = 'clip/media_id'           # bytes, optional.
FRAME_RATE_KEY = 'clip/frame_rate'       # float, optional.
IMAGE_HEIGHT_KEY = 'image/height'        # int64, optional.
IMAGE_WIDTH_KEY = 'image/width'          # int64, optional.

# AVA-style keyframe examples (tools/convert_ava.py; docs/datasets.md): one
# SequenceExample per (video, keyframe). The feature list IMAGE_KEY holds the
# clip's frames already at the clip's stride, the keyframe at position
# KEYFRAME_INDEX_KEY; all keys below are context features.
KEYFRAME_TIMESTAMP_KEY = 'clip/keyframe/timestamp'    # int64: seconds, as in
                                                      # the AVA CSVs.
KEYFRAME_INDEX_KEY = 'clip/keyframe/index'            # int64: position of the
                                                      # keyframe in the clip.
CLIP_STRIDE_KEY = 'clip/frame_stride'                 # int64: source frames
                                                      # between stored frames.
GT_BBOX_KEYS = ('keyframe/bbox/ymin', 'keyframe/bbox/xmin',
                'keyframe/bbox/ymax', 'keyframe/bbox/xmax')  # float [P]:
                                                      # one box per person.
GT_PERSON_KEY = 'keyframe/bbox/person_id'             # int64 [P].
GT_LABEL_KEY = 'keyframe/bbox/label/index'            # int64 [L]: action ids
                                                      # (1-based, as in the
                                                      # label map).
GT_LABEL_BOX_KEY = 'keyframe/bbox/label/box_index'    # int64 [L]: which of
                                                      # the P boxes.
DET_BBOX_KEYS = ('keyframe/detection/bbox/ymin',
                 'keyframe/detection/bbox/xmin',
                 'keyframe/detection/bbox/ymax',
                 'keyframe/detection/bbox/xmax')      # float [D].
DET_SCORE_KEY = 'keyframe/detection/score'            # float [D].
