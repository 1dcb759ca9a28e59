"""Recording snapshots to a file and replaying them (`netscope --record FILE`, `netscope --replay FILE`).

No Textual here: the one-shot CLI, the headless recorder and the UI all use this package. The file format is
described in fileformat.py; socket_codec.py and view_codecs.py encode and check what frames hold; writer.py and
reader.py write and index files; replay.py makes sources of them for the UI, and tee.py records a live one. What
other code uses is named here, and loaded when first asked for: the UI holds a RecordingTee from the start, and a
session that records nothing never needs the rest (0.65 MiB of resident memory, measured).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from netscope.collectors.recording.replay import RecordedViews, ReplaySource
    from netscope.collectors.recording.tee import RecordingTee
    from netscope.collectors.recording.writer import RecordingWriter

# name -> the module of this package that holds it
_MODULES = {
    **dict.fromkeys(("FRAME_HEADER_SIZE", "FRAME_HEADER_SIZE_V1", "INFLATE_RATIO", "MAGIC", "MAX_PAYLOAD",
                     "ROUTES_DELTA", "ROUTES_KEYFRAME", "SYNC", "VERSION", "VIEWS_DELTA", "VIEWS_KEYFRAME",
                     "NotARecording", "RecordingDamaged", "RecordingError", "inflate_bound"), "fileformat"),
    "RecordingReader": "reader",
    "RecordedViews": "replay",
    "ReplaySource": "replay",
    "RecordingTee": "tee",
    "RecordingWriter": "writer",
}

__all__ = [
    "FRAME_HEADER_SIZE", "FRAME_HEADER_SIZE_V1", "INFLATE_RATIO", "MAGIC", "MAX_PAYLOAD", "ROUTES_DELTA",
    "ROUTES_KEYFRAME", "SYNC", "VERSION", "VIEWS_DELTA", "VIEWS_KEYFRAME", "NotARecording", "RecordedViews",
    "RecordingDamaged", "RecordingError", "RecordingReader", "RecordingTee", "RecordingWriter", "ReplaySource",
    "inflate_bound",
]
assert sorted(__all__) == sorted(_MODULES)


def __getattr__(name: str) -> object:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
