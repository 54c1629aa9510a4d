"""Targets: what a run drives load and faults at. ``local`` is the embedded stack, ``http`` any
deployment that speaks the counter contract (no faults), ``aws`` a deployed stack found by its
CloudFormation outputs. The orchestrator only talks to the ``Target`` interface."""
