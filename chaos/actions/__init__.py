"""The catalogue of fault actions: each defined once here, implemented by every backend.

Importing this package registers the built-in actions, so ``ACTIONS`` is complete for any caller.
"""

# isort: off
# Registration order is the order of the catalogue in messages and docs: fleet first, then the function.
from chaos.actions import terminate_instance, stop_instance, set_capacity, throttle_lambda, lambda_faults

# isort: on
from chaos.actions.action import Action, ActionParams
from chaos.actions.lambda_faults import LAMBDA_ERRORS, LAMBDA_LATENCY, LambdaErrorsParams, LambdaLatencyParams
from chaos.actions.registry import ACTIONS, action_names, get_action, register
from chaos.actions.selection import ALLOW_TAG, InstanceCount, TargetSelector
from chaos.actions.set_capacity import SET_CAPACITY, SetCapacityParams
from chaos.actions.stop_instance import STOP_INSTANCE, StopInstanceParams
from chaos.actions.terminate_instance import TERMINATE_INSTANCE, TerminateInstanceParams
from chaos.actions.throttle_lambda import THROTTLE_LAMBDA, ThrottleLambdaParams

__all__ = [
    "ACTIONS",
    "ALLOW_TAG",
    "LAMBDA_ERRORS",
    "LAMBDA_LATENCY",
    "SET_CAPACITY",
    "STOP_INSTANCE",
    "TERMINATE_INSTANCE",
    "THROTTLE_LAMBDA",
    "Action",
    "ActionParams",
    "InstanceCount",
    "LambdaErrorsParams",
    "LambdaLatencyParams",
    "SetCapacityParams",
    "StopInstanceParams",
    "TargetSelector",
    "TerminateInstanceParams",
    "ThrottleLambdaParams",
    "action_names",
    "get_action",
    "lambda_faults",
    "register",
    "set_capacity",
    "stop_instance",
    "terminate_instance",
    "throttle_lambda",
]
