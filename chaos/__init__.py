"""Chaos: scenarios, fault actions, their backends, and the scheduler that injects them on time.

- ``chaos.scenario``: scenario files (``load_scenario``) validated into ``Scenario``.
- ``chaos.actions``: the registry of actions, each defined once (name, parameters, shape).
- ``chaos.backends``: the ``Backend`` interface; ``chaos.backends.local`` drives the local stack.
- ``chaos.journal``: ``faults.jsonl``, written ahead of every change.
- ``chaos.rollback``: restoring what faults changed, live or from the journal after a crash.
- ``chaos.scheduler``: ``FaultScheduler``, which runs a scenario's faults against a backend.

This package never imports ``loadtests``: the orchestrator connects the two.
"""
