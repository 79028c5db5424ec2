"""The footer of the main screen: Textual's own, except that a change of which keys apply
greys keys in or out in place.

Textual's ``Footer`` rebuilds all its keys (a dozen widgets to mount and lay out, ~30 ms)
whenever the screen's bindings are refreshed, which the main screen does each time the
selected job or its status changes. When the same keys are shown and only whether they
apply changed, marking them is all the rebuild would have done.
"""

from __future__ import annotations

from collections import defaultdict

from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeysFooter(Footer):
    def bindings_changed(self, screen: Screen) -> None:
        if self.app.app_focus and self.is_attached and screen is self.screen and self._mark_in_place():
            self._bindings_ready = True
            return
        super().bindings_changed(screen)

    def _mark_in_place(self) -> bool:
        """Grey keys in or out if the footer shows exactly the keys ``compose`` would
        yield now; False if it must be composed again."""
        if not self._bindings_ready or self.show_command_palette:
            return False
        by_action: defaultdict[str, list[tuple[Binding, bool, str]]] = defaultdict(list)
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show:
                by_action[binding.action].append((binding, enabled, tooltip))
        if any(len(group) > 1 and group[0][0].group is not None for group in by_action.values()):
            return False  # grouped keys: leave those to ``compose``
        wanted = [group[0] for group in by_action.values()]
        keys = [key for key in self.children if type(key) is FooterKey]
        if len(keys) != len(self.children) or len(keys) != len(wanted):
            return False
        for key, (binding, _, tooltip) in zip(keys, wanted):
            shown = (binding.key, self.app.get_key_display(binding), binding.description, binding.action)
            if (key.key, key.key_display, key.description, key.action) != shown or key.tooltip != (tooltip or None):
                return False
        for key, (_, enabled, _) in zip(keys, wanted):
            if key._disabled == enabled:
                key._disabled = not enabled
                key.set_class(not enabled, "-disabled")
        return True
