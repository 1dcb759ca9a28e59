"""Polls the collectors behind views 2-5 (interfaces, routes, statistics, multicast) in one thread call.

The code lives in netscope.collectors.view_data (the recorder needs it without Textual); these names stay
importable from here.
"""

from __future__ import annotations

from netscope.collectors.view_data import ROUTES_WHILE_RECORDING, SystemViews, ViewData, ViewSource

__all__ = ["ROUTES_WHILE_RECORDING", "SystemViews", "ViewData", "ViewSource"]
