"""One line per check saying what it measures and which way it passes, from the check's name.

The names follow docs/scenarios.md#check-names. A name this module does not know (a check added to
the analysis later) gets the generic rule, so the report never fails on a new check.
"""

from __future__ import annotations

PERCENTILE_KEYS = {
    "p50_ms": "median (p50)",
    "p90_ms": "p90",
    "p95_ms": "p95",
    "p99_ms": "p99",
    "p999_ms": "p99.9",
    "max_ms": "slowest",
}

_FIXED = {
    "run.aborted": "1 if a signal stopped the run before its end; it must run to completion",
    "faults.aborted": "faults whose injection failed (an inject line, then an abort line in the journal)",
    "consistency.valid": "the counter checker found no violation of any kind (see the consistency panel)",
    "consistency.lost": "acknowledged increments the store never applied",
    "consistency.duplicated": "applications beyond one per increment key (or counted without a ledger row)",
    "consistency.unexpected": "increments the store applied that no client ever attempted",
    "consistency.read_violations": "reads that saw a value no order of the increments allows",
}

_SCALING = {
    "reaction_s": "seconds from a load step to the fleet's first scale-out (the slowest step)",
    "in_service_s": "seconds from a load step until that scale-out's instances were in service (the "
    "slowest step)",
    "p95_recovered_s": "seconds from a load step until the fleet's p95 held under its target for the "
    "stability window",
    "replacement_in_service_s": "seconds from an instance kill until its replacement was in service",
    "replacement_first_2xx_s": "seconds from an instance kill to the first 2xx its replacement served",
    "lambda_cold_starts": "new Lambda execution environments during the load",
    "lambda_cold_start_ms": "p95 latency of the requests that met a Lambda cold start (worst phase), ms",
    "lambda_throttle_rate": "share of the Lambda requests throttled (worst phase)",
}


def at_least(name: str) -> bool:
    """Whether the check passes when measured ≥ threshold (goodput, availability)."""
    return name.endswith((".min_rps", ".availability"))


def relation(check: dict) -> str:
    """How measured must compare with the threshold: ``≤``, ``≥`` or ``=``."""
    if isinstance(check.get("threshold"), bool):
        return "="
    return "≥" if at_least(str(check.get("name", ""))) else "≤"


def explain(check: dict) -> str:
    """The one-line explanation of ``check`` (a record of ``summary.checks``)."""
    name = str(check.get("name", ""))
    if name in _FIXED:
        return _FIXED[name]
    parts = name.split(".")
    phase = check.get("phase")
    head, key = parts[0], parts[-1]
    if head == "recovery" and len(parts) == 3:
        fault = parts[1]
        return {
            "ttr_s": f"seconds from {fault}'s injection until the service was healthy for the stability "
            "window; none if it never recovered",
            "degradation_rs": f"request-seconds of baseline goodput lost from {fault}'s injection to "
            "its recovery",
            "availability": f"ok / (requests + omitted) during {fault}'s window",
        }.get(key, _generic(name))
    if head == "budget" and key == "consumed":
        return (
            f"share of {parts[1]}'s error budget spent: bad events / the bad events the availability "
            "target allows; 1 is the whole budget"
        )
    if head == "compare":
        target = parts[1] if len(parts) == 3 else "recovery"
        if key == "p99_ms":
            return (
                f"{target}'s per-second p99 over the baseline's (Hodges-Lehmann ratio); fails only when "
                "significantly above (High)"
            )
        if key == "error_rate":
            return (
                f"shift of {target}'s per-second error rate from the baseline's (Hodges-Lehmann); fails "
                "only when significantly above (High)"
            )
    if head == "scaling":
        return _SCALING.get(key, f"scaling figure {key.replace('_', ' ')}") + " (see the Scaling section)"
    if len(parts) == 2 and phase is None and head in ("baseline", "fault", "recovery"):
        return f"the scenario sets a {head} limit, but the run has no {head} phase"
    if len(parts) == 2:
        where = f"in {phase or head}"
        if key in PERCENTILE_KEYS:
            return f"{PERCENTILE_KEYS[key]} raw latency of the requests started {where}, ms"
        if key == "error_rate":
            return f"share of the events {where} that were not ok (failed, indeterminate or omitted)"
        if key == "min_rps":
            return f"ok requests per second {where} (goodput)"
    return _generic(name)


def _generic(name: str) -> str:
    return f"{name}: passes when the measured value is within the threshold"
