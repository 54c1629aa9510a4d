"""The catalogue of fault actions: each defined once here, implemented by every backend.

Importing this package registers the built-in actions, so ``ACTIONS`` is complete for any caller.
"""

from chaos.actions import terminate_instance, throttle_lambda
from chaos.actions.action import Action, ActionParams
from chaos.actions.registry import ACTIONS, action_names, get_action, register
from chaos.actions.terminate_instance import TERMINATE_INSTANCE, TerminateInstanceParams
from chaos.actions.throttle_lambda import THROTTLE_LAMBDA, ThrottleLambdaParams

__all__ = [
    "ACTIONS",
    "TERMINATE_INSTANCE",
    "THROTTLE_LAMBDA",
    "Action",
    "ActionParams",
    "TerminateInstanceParams",
    "ThrottleLambdaParams",
    "action_names",
    "get_action",
    "register",
    "terminate_instance",
    "throttle_lambda",
]
