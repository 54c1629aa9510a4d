"""What an action is: a fault defined once, independent of the backend that carries it out.

A scenario names an action and gives its parameters inline; the scenario loader validates those
parameters with the action's model, and every backend (local stack, AWS) implements the action under
the same name. Keeping the definition free of any backend is what lets one scenario run on both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict


class ActionParams(BaseModel):
    """Base of every action's parameter model: strict, closed and immutable.

    Strict so that ``count: "2"`` or ``count: true`` in a scenario is an error rather than a guess;
    closed so that a misspelt parameter is reported instead of silently ignored.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


@dataclass(frozen=True)
class Action:
    """One kind of fault.

    ``takes_duration`` separates the two shapes of fault: an action that holds an effect for a time
    and is undone at the end (``throttle-lambda``), and a one-shot action whose effect the system
    repairs on its own (``terminate-instance``) and which is only observed for a settling window.
    ``target_kind`` names what the action acts on; two overlapping faults of the same action on the
    same target conflict (the second would capture the first's effect as the state to restore).
    """

    name: str
    params: type[ActionParams]
    takes_duration: bool
    target_kind: str
    summary: str
    doc: str = ""
    example: dict[str, Any] = field(default_factory=dict)
    """Parameters of a typical use, valid for ``params`` (the docs and the tests use it)."""
