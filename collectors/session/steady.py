"""Measured figures as shown on screen: a number that wobbles by a few percent every second is not news, and over
SSH each rewrite of it costs bytes. A SteadyFigure changes only when the measurement moves meaningfully."""

from __future__ import annotations


class SteadyFigure:
    """Keeps the value last shown until a new measurement differs from it by more than `least` (in the figure's own
    unit) and by more than a factor of 1 + `tolerance` either way (a halving counts as much as a doubling)."""

    def __init__(self, tolerance: float = 0.25, least: float = 0.0) -> None:
        self.tolerance = tolerance
        self.least = least
        self.shown: float | None = None

    def update(self, value: float) -> float:
        """Take a measurement; return what to show."""
        shown = self.shown
        if shown is None or self._moved(value, shown):
            self.shown = shown = value
        return shown

    def _moved(self, value: float, shown: float) -> bool:
        if abs(value - shown) <= self.least:
            return False
        low, high = sorted((abs(value), abs(shown)))
        return high > low * (1 + self.tolerance)


class SteadyFigures:
    """SteadyFigure per name (one per interface, say), forgetting names not asked for in the last update."""

    def __init__(self, tolerance: float = 0.25, least: float = 0.0) -> None:
        self.tolerance = tolerance
        self.least = least
        self._figures: dict[str, SteadyFigure] = {}

    def update(self, values: dict[str, float]) -> dict[str, float]:
        figures = {name: self._figures.get(name) or SteadyFigure(self.tolerance, self.least) for name in values}
        self._figures = figures
        return {name: figures[name].update(value) for name, value in values.items()}
