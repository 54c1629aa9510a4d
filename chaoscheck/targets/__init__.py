"""Targets: what a run drives load and faults at. ``local`` is the embedded stack; ``http`` and
``aws`` come with later work. The orchestrator only talks to the ``Target`` interface."""
