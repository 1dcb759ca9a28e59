"""The footer of keys: Textual's Footer, made again only when the keys it shows change."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer

# What the footer draws of one key: the key, what it says, the action it runs, whether it is enabled, its tooltip.
ShownKey = tuple[str, str, str, bool, str]


def keys_shown(screen: Screen[object]) -> tuple[ShownKey, ...]:
    """The keys a Footer of `screen` draws, in its order (Footer.compose: those with `show`)."""
    return tuple(
        (binding.key, binding.description, binding.action, enabled, tooltip)
        for _node, binding, enabled, tooltip in screen.active_bindings.values()
        if binding.show
    )


class KeyFooter(Footer):
    """Textual's Footer makes its keys again on every bindings signal: each focus change, and each reactive that
    may enable or disable a key, whether or not any key changed. Opening the filter prompt made them twice, and its
    Enter twice more (measured), each a repaint (≈ 20 ms at 500,000 sockets) and a line sent again over SSH; the
    keys shown changed once each time. This footer makes them again only when what it shows differs."""

    def __init__(self) -> None:
        super().__init__()
        self._shown: tuple[ShownKey, ...] | None = None  # the keys last made, once made

    def bindings_changed(self, screen: Screen[object]) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:  # where Footer makes them again
            shown = keys_shown(screen)
            if shown == self._shown:
                return
            self._shown = shown
        super().bindings_changed(screen)
