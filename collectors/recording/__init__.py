"""Recording snapshots to a file and replaying them (`netscope --record FILE`, `netscope --replay FILE`).

No Textual here: the one-shot CLI, the headless recorder and the UI all use this package. The file format is
described in fileformat.py; socket_codec.py and view_codecs.py encode and check what frames hold; writer.py and
reader.py write and index files; replay.py makes sources of them for the UI. What other code uses is named here.
"""

from netscope.collectors.recording.fileformat import (
    FRAME_HEADER_SIZE,
    FRAME_HEADER_SIZE_V1,
    INFLATE_RATIO,
    MAGIC,
    MAX_PAYLOAD,
    ROUTES_DELTA,
    ROUTES_KEYFRAME,
    SYNC,
    VERSION,
    VIEWS_DELTA,
    VIEWS_KEYFRAME,
    NotARecording,
    RecordingDamaged,
    RecordingError,
    inflate_bound,
)
from netscope.collectors.recording.reader import RecordingReader
from netscope.collectors.recording.replay import RecordedViews, RecordingTee, ReplaySource
from netscope.collectors.recording.writer import RecordingWriter

__all__ = [
    "FRAME_HEADER_SIZE", "FRAME_HEADER_SIZE_V1", "INFLATE_RATIO", "MAGIC", "MAX_PAYLOAD", "ROUTES_DELTA",
    "ROUTES_KEYFRAME", "SYNC", "VERSION", "VIEWS_DELTA", "VIEWS_KEYFRAME", "NotARecording", "RecordedViews",
    "RecordingDamaged", "RecordingError", "RecordingReader", "RecordingTee", "RecordingWriter", "ReplaySource",
    "inflate_bound",
]
