"""`[keys]` in the config file: bindings remapped by id, as posting's keymaps do."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode


def binding_ids(app: App[Any], unmounted: Iterable[DOMNode] = ()) -> set[str]:
    """The ids of every binding the App and its widgets declare, and the widgets in `unmounted` (views not yet
    shown): what `[keys]` may remap."""
    ids: set[str] = set()
    # An unmounted view's own widgets are its attributes (the views hold them: data may come before they mount).
    held = [child for view in unmounted for child in vars(view).values() if isinstance(child, DOMNode)]
    for node in (app, *app.walk_children(with_self=False), *unmounted, *held):
        for cls in type(node).__mro__:
            ids.update(binding.id for binding in vars(cls).get("BINDINGS", ())
                       if isinstance(binding, Binding) and binding.id)
    return ids


def apply_keymap(app: App[Any], keys: dict[str, str], places: dict[str, str],
                 unmounted: Iterable[DOMNode] = ()) -> list[str]:
    """Remap what `keys` names (binding id -> keys); the entries that name no binding, in words with their line.
    `unmounted`: widgets whose keys count though they are not mounted yet."""
    known = binding_ids(app, unmounted)
    keymap = {binding_id: value for binding_id, value in keys.items() if binding_id in known}
    if keymap:
        app.set_keymap(keymap)
    return [f"{places.get(binding_id, 'the config file')}: keys.{binding_id} is not a key netscope has (? shows "
            "each key's id); ignored" for binding_id in keys if binding_id not in known]
