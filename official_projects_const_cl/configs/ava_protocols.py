"""The two AVA frame-mAP protocols: plain constants.

ActivityNet's `Evaluation/get_ava_performance.py` changed its keyframe rules
on 2020-04-24 (commit c070fdb). '2018' is the script before that change (the
one SlowFast and MMAction2 vendor), 'current' the script since; the rules of
each and where they come from: docs/metrics.md. Shared by the metric
(`evaluation/ava_metrics.py`), the CSV reader (`dataloaders/ava_io.py`), the
`ava_map` command line and `LocalizationEval.protocol`. Imports nothing.
"""

PROTOCOL_2018 = '2018'
PROTOCOL_CURRENT = 'current'
PROTOCOLS = (PROTOCOL_2018, PROTOCOL_CURRENT)
DEFAULT_PROTOCOL = PROTOCOL_2018


def check_protocol(protocol: str) -> str:
  """Returns `protocol` if it is one of PROTOCOLS, else raises ValueError."""
  if protocol not in PROTOCOLS:
    raise ValueError(f'AVA protocol must be one of {list(PROTOCOLS)}, got '
                     f'{protocol!r}')
  return protocol
