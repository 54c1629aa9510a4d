"""The registry of actions: the single place that maps a scenario's ``action:`` to its definition."""

from __future__ import annotations

from chaos.actions.action import Action

_RESERVED = frozenset({"at", "action", "duration", "settle"})
"""Keys of a fault entry that belong to the scheduler, so no action may use them as parameters."""

ACTIONS: dict[str, Action] = {}
"""Every registered action by name, in registration order."""


def register(action: Action) -> Action:
    """Add ``action`` to the registry; refuses a second action of the same name or a reserved parameter.

    Both are programming errors caught at import time, long before a scenario is read.
    """
    if action.name in ACTIONS:
        raise ValueError(f"action {action.name!r} is already registered")
    clash = _RESERVED & set(action.params.model_fields)
    if clash:
        raise ValueError(f"action {action.name!r} uses reserved fault keys as parameters: {sorted(clash)}")
    ACTIONS[action.name] = action
    return action


def get_action(name: str) -> Action:
    """The action called ``name``; ``KeyError`` naming the known actions when there is none."""
    try:
        return ACTIONS[name]
    except KeyError:
        raise KeyError(f"unknown action {name!r}; known actions: {', '.join(ACTIONS)}") from None


def action_names() -> tuple[str, ...]:
    """Names of the registered actions, in registration order (for messages and docs)."""
    return tuple(ACTIONS)
