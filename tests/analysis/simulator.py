"""A correct counter service, simulated: its clients' history and its store's ledger; and injectors.

``simulate(config, seed)`` runs clients against a model of the store and returns a :class:`History`:

* The store is a list of :class:`Event` (the counter changes by ``delta`` at instant ``at``; a
  ``ledgered`` event also writes a ``server_ops.parquet`` row). A correct store applies each
  idempotency key at most once, within the interval of an attempt that reached it (or, for an ``info``
  attempt, possibly later, before the run quiesces), and answers a replay of a key with the value of
  its first application.
* Clients run concurrently, each one operation at a time with random durations and think times, so
  their operations overlap. An increment attempt is ``ok`` (applied, or a replay), ``fail`` (it never
  reached the store) or ``info`` (applied or not, maybe later); ``info`` and some ``fail`` attempts
  are retried with the same key (attempt 0, 1, 2). A strong read returns the count at an instant
  within its interval; an eventual read the count at an instant up to ``eventual_lag_ms`` before its
  start (so it may be stale, never from the future). After the last round the run is quiet and every
  endpoint used is read once more (``final``), retrying after a failed attempt.
* Values are not stored but derived (:meth:`History.frames`) from the events: an ok increment carries
  its key's first application's ``value_after``, a read the count at its ``snapshot``. Injectors
  change the model (remove or add events, splice operations in at a quiet instant, override a few
  values) and every value stays consistent with the change.

Each injector corrupts a correct history in one known way and returns an :class:`Injected`: the
history and the exact anomaly counts the checker must report (``expected``, counts per class; a
class not listed must have count 0, except the ``recovered`` note, checked separately). Some
injectors first pad the history with indeterminate increments (:func:`pad`), which a correct run may
contain, so that the corruption has room to create its class and nothing else (for example, a lost
write is hidden from the bounds by a recovered one).

The frames have the columns and dtypes that ``analysis.rundir.load_run`` gives (``OPS_SCHEMA`` and
``SERVER_OPS_SCHEMA``, nullable integers as ``Int64``); ``test_simulated_histories`` checks that.
Times are integer ns after :data:`history.T0`.
"""

from __future__ import annotations

import bisect
import copy
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
from history import T0

from analysis import rundir
from chaoscheck import runformat as rf

US = 1_000
MS = 1_000_000

MODEL = "model"
"""An op's ``value`` when it is derived from the model (the default); an int or None overrides it."""

OK, FAIL, INFO = rf.OK, rf.FAIL, rf.INFO

_FAIL_ANSWERS = {
    "fleet": [(503, "503 no instance in service", "balancer"), (0, "ConnectionRefusedError: refused", None)],
    "lambda": [(429, "429 TooManyRequestsException", "function-url")],
}
_INFO_ANSWERS = {
    "fleet": [(502, "502 Bad Gateway", "balancer"), (504, "504 Gateway Timeout", "balancer")],
    "lambda": [(500, "500 Internal Server Error", "function-url"), (0, "TimeoutError: timed out", None)],
}
_SERVED_BY = {"fleet": "i-0a1b2c", "lambda": "env-1"}


@dataclass
class Op:
    """One row of ``ops.parquet``, its value still to be derived (``value`` is :data:`MODEL`)."""

    kind: str
    start: int
    end: int
    outcome: str = OK
    key: str | None = None
    endpoint: str = "fleet"
    attempt: int = 0
    worker: str = "sim:0"
    status: int = 200
    error: str | None = None
    served_by: str | None = None
    snapshot: int | None = None
    """Reads and finals: the instant whose count the read returns."""
    value: int | str | None = MODEL


@dataclass
class Event:
    """The counter changed by ``delta`` at ``at`` because of ``key`` (a ledger row if ``ledgered``)."""

    at: int
    key: str | None
    delta: int = 1
    ledgered: bool = True


@dataclass
class State:
    """What the checker's definitions give at a quiet instant (nothing in flight, nothing pending)."""

    count: int
    """C: the counter's value."""
    lower: int
    """L: ok keys so far (every ok attempt ended before the instant)."""
    upper: int
    """U: ok and info keys so far."""
    max_read: int
    """M: the largest value an ok read or final returned so far (-1 when none did)."""


@dataclass
class History:
    ops: list[Op]
    events: list[Event]
    quiet: list[int]
    """Quiet instants, in time order: before any operation, between rounds, before the final reads."""
    reads: str = "strong"
    ledger: bool = True
    counter: str = "c1"
    _serial: int = 0

    # -- the model ---------------------------------------------------------------------------------

    def copy(self) -> History:
        return copy.deepcopy(self)

    def _timeline(self) -> tuple[list[int], list[int], dict[str, int], list[tuple[Event, int]]]:
        """Event times in order, the count after each, each key's first value, ledgered rows."""
        order = sorted(range(len(self.events)), key=lambda i: (self.events[i].at, i))
        times, counts, first, ledgered = [], [], {}, []
        count = 0
        for i in order:
            event = self.events[i]
            count += event.delta
            times.append(event.at)
            counts.append(count)
            if event.key is not None and event.delta > 0:
                first.setdefault(event.key, count)
            if event.ledgered:
                ledgered.append((event, count))
        return times, counts, first, ledgered

    def values(self) -> list[int | None]:
        """The value each op carries, in ``ops`` order."""
        times, counts, first, _ = self._timeline()
        out: list[int | None] = []
        for op in self.ops:
            if op.value != MODEL:
                out.append(op.value)  # type: ignore[arg-type]
            elif op.outcome != OK:
                out.append(None)
            elif op.kind == "increment":
                out.append(first.get(op.key))  # type: ignore[arg-type]
            else:
                at = bisect.bisect_right(times, op.snapshot)
                out.append(counts[at - 1] if at else 0)
        return out

    def final_value(self) -> int:
        return sum(e.delta for e in self.events)

    def rows(self) -> list[dict]:
        """``ops.parquet`` rows (``OPS_SCHEMA``), in the order the ops were made."""
        return [
            {
                "op_id": op.key,
                "kind": op.kind,
                "endpoint": op.endpoint,
                "counter": self.counter,
                "start_ns": T0 + op.start,
                "end_ns": T0 + op.end,
                "status": op.status,
                "outcome": op.outcome,
                "value": value,
                "error": op.error,
                "served_by": op.served_by,
                "worker": op.worker,
                "intended_ns": None,
                "attempt": op.attempt,
                "trace_id": None,
            }
            for op, value in zip(self.ops, self.values(), strict=True)
        ]

    def ledger_rows(self) -> list[dict]:
        """``server_ops.parquet`` rows (``SERVER_OPS_SCHEMA``), in the order of application."""
        _, _, _, ledgered = self._timeline()
        return [
            {"op_id": e.key, "counter": self.counter, "value_after": after, "applied_ns": T0 + e.at}
            for e, after in ledgered
        ]

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """(ops, server_ops) as ``load_run`` gives them; server_ops is None without a ledger."""
        ops = to_frame(self.rows(), rf.OPS_SCHEMA, _CATEGORICAL["ops"])
        if not self.ledger:
            return ops, None
        return ops, to_frame(self.ledger_rows(), rf.SERVER_OPS_SCHEMA, _CATEGORICAL["server_ops"])

    # -- facts for the tests -----------------------------------------------------------------------

    def key_outcomes(self) -> dict[str, str]:
        """Each increment key's outcome by the key rule: ok if any attempt ok, fail if all fail."""
        seen: dict[str, set[str]] = {}
        for op in self.ops:
            if op.kind == "increment":
                seen.setdefault(op.key, set()).add(op.outcome)  # type: ignore[arg-type]
        return {k: OK if OK in s else FAIL if s == {FAIL} else INFO for k, s in seen.items()}

    def applied_keys(self) -> set[str]:
        return {e.key for e in self.events if e.ledgered and e.key is not None}

    def state_at(self, q: int) -> State:
        outcomes = self.key_outcomes()
        starts: dict[str, int] = {}
        for op in self.ops:
            if op.kind == "increment" and op.outcome != FAIL:
                starts[op.key] = min(op.start, starts.get(op.key, op.start))  # type: ignore[index]
        ok_ends: dict[str, int] = {}
        for op in self.ops:
            if op.kind == "increment" and op.outcome == OK:
                ok_ends[op.key] = min(op.end, ok_ends.get(op.key, op.end))  # type: ignore[index]
        reads = [
            v
            for op, v in zip(self.ops, self.values(), strict=True)
            if op.kind in ("read", "final") and op.outcome == OK and v is not None and op.end < q
        ]
        return State(
            count=sum(e.delta for e in self.events if e.at <= q),
            lower=sum(1 for k, end in ok_ends.items() if end < q and outcomes[k] == OK),
            upper=sum(1 for k, start in starts.items() if start <= q and outcomes[k] != FAIL),
            max_read=max(reads, default=-1),
        )

    # -- changes -----------------------------------------------------------------------------------

    def fresh_key(self, tag: str) -> str:
        self._serial += 1
        return f"{self.counter}:{tag}.{self._serial}"

    def splice(self, at: int, length: int, ops: Iterable[Op], events: Iterable[Event]) -> int:
        """Insert a segment of ``length`` ns at the quiet instant ``self.quiet[at]``; returns its start.

        Everything after the instant moves ``length`` later; the segment's ops and events are given
        relative to its start. Values after it are derived again, so they include the segment's
        events. The segment's end is a quiet instant too.
        """
        q = self.quiet[at]
        for op in self.ops:
            if op.start > q:
                if op.value != MODEL and op.kind != "final":
                    raise ValueError("splice before overriding values: this op's value would not move")
                op.start += length
                op.end += length
                if op.snapshot is not None and op.snapshot > q:
                    op.snapshot += length
            elif op.end > q:
                raise ValueError(f"instant {q} is not quiet: an op spans it")
        for event in self.events:
            if event.at > q:
                event.at += length
        self.quiet = [t if t <= q else t + length for t in self.quiet]
        self.quiet.insert(at + 1, q + length)
        for op in ops:
            op.start += q
            op.end += q
            if op.snapshot is not None:
                op.snapshot += q
            self.ops.append(op)
        for event in events:
            event.at += q
            self.events.append(event)
        self.ops.sort(key=lambda o: (o.start, o.end))
        return q


# The string columns ``analysis.rundir`` reads as categoricals (none with a reader that has no
# ``OPS_CATEGORICAL``); the ledger's ``counter`` goes with them.
_CATEGORICAL = {
    "ops": tuple(getattr(rundir, "OPS_CATEGORICAL", ())),
    "server_ops": ("counter",) if hasattr(rundir, "OPS_CATEGORICAL") else (),
}


def to_frame(rows: list[dict], schema: pa.Schema, categorical: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows as ``analysis.rundir`` reads a Parquet table of ``schema``: nullable integers as Int64,
    the ``categorical`` string columns as categoricals with sorted categories."""
    table = pa.Table.from_pylist(rows, schema=schema)
    columns = {}
    for spec in schema:
        column = table.column(spec.name)
        if spec.name in categorical:
            series = column.dictionary_encode().to_pandas()
            columns[spec.name] = series.cat.reorder_categories(sorted(series.cat.categories))
        elif pa.types.is_integer(spec.type) and spec.nullable:
            columns[spec.name] = column.to_pandas(types_mapper={spec.type: pd.Int64Dtype()}.get)
        else:
            columns[spec.name] = column.to_pandas()
    return pd.DataFrame(columns)


# -- the correct simulator ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    clients: int = 3
    ops: int = 8
    """Operations per client and round (an increment with its retries is one operation)."""
    rounds: int = 1
    read_share: float = 0.3
    fail: float = 0.1
    """Share of attempts (increments and reads) that fail."""
    info: float = 0.15
    """Share of attempts that are indeterminate."""
    info_applied: float = 0.5
    """An indeterminate increment attempt reached the store ..."""
    info_late: float = 0.5
    """... and of those, this share was applied after the client had its answer."""
    retries: int = 2
    """Further attempts of a key after an info outcome (and after a fail, with ``retry_fail``)."""
    retry_fail: float = 0.3
    reads: str = "strong"
    eventual_lag_ms: int = 60
    ledger: bool = True
    final_failures: float = 0.3
    """Chance that an endpoint's first final attempt fails (it is then retried)."""
    endpoints: tuple[str, ...] = ("fleet", "lambda")


def simulate(config: Config = Config(), seed: int = 0) -> History:
    rng = random.Random(seed)
    ops: list[Op] = []
    events: list[Event] = []
    quiet = [0]
    t0 = 0
    serial = 0
    endpoints_used: set[str] = set()

    def span() -> int:
        return rng.randint(100, 30_000) * US

    def think() -> int:
        return rng.randint(0, 10_000) * US

    def draw() -> str:
        x = rng.random()
        return FAIL if x < config.fail else INFO if x < config.fail + config.info else OK

    for _ in range(config.rounds):
        last = t0
        for c in range(config.clients):
            endpoint = rng.choice(config.endpoints)
            worker = f"sim:{c}"
            t = t0 + rng.randint(1, 5_000) * US
            for _ in range(config.ops):
                if rng.random() < config.read_share:
                    start, end = t, t + span()
                    outcome = draw()
                    op = Op("read", start, end, outcome, endpoint=endpoint, worker=worker)
                    _answer(op, rng)
                    if outcome == OK:
                        earliest = start - rng.randint(0, config.eventual_lag_ms) * MS
                        op.snapshot = rng.randint(earliest if config.reads == "eventual" else start, end)
                    ops.append(op)
                    endpoints_used.add(endpoint)
                    t = end + think()
                    continue
                serial += 1
                key = f"c1:sim{c}.{serial}"
                applied_at: int | None = None
                for attempt in range(config.retries + 1):
                    start, end = t, t + span()
                    outcome = draw()
                    op = Op("increment", start, end, outcome, key, endpoint, attempt, worker)
                    _answer(op, rng)
                    ops.append(op)
                    endpoints_used.add(endpoint)
                    point: int | None = None
                    if outcome == OK:
                        point = rng.randint(start, end)
                    elif outcome == INFO and rng.random() < config.info_applied:
                        late = rng.random() < config.info_late
                        point = rng.randint(end + 1, end + 100 * MS) if late else rng.randint(start, end)
                    # The store applies a key once: a later arrival (or a pending one) is a replay.
                    if point is not None and (applied_at is None or point < applied_at):
                        applied_at = point
                    t = end + think()
                    if outcome == OK or (outcome == FAIL and rng.random() >= config.retry_fail):
                        break
                if applied_at is not None:
                    events.append(Event(applied_at, key))
                    last = max(last, applied_at)
            last = max(last, t)
        t0 = max([last, *(o.end for o in ops)]) + rng.randint(1, 20) * MS
        quiet.append(t0)

    history = History(ops, events, quiet, config.reads, config.ledger)
    history._serial = serial
    add_finals(history, sorted(endpoints_used) or ["fleet"], rng, config.final_failures)
    return history


def _answer(op: Op, rng: random.Random) -> None:
    """Status, error and served_by of an attempt, by the outcome rule of docs/run-format.md."""
    if op.outcome == OK:
        op.status, op.error, op.served_by = 200, None, _SERVED_BY[op.endpoint]
    else:
        answers = (_FAIL_ANSWERS if op.outcome == FAIL else _INFO_ANSWERS)[op.endpoint]
        op.status, op.error, op.served_by = rng.choice(answers)


def add_finals(history: History, endpoints: list[str], rng: random.Random, failures: float = 0.0) -> None:
    """The final reads after the last quiet instant: per endpoint, failed attempts then an ok one."""
    t = history.quiet[-1] + MS
    for endpoint in endpoints:
        attempts = 1 + (rng.random() < failures) + (rng.random() < failures / 2)
        for n in range(attempts):
            outcome = OK if n == attempts - 1 else INFO
            op = Op(
                "final", t, t + rng.randint(200, 3_000) * US, outcome, endpoint=endpoint, worker="sim:final"
            )
            _answer(op, rng)
            if outcome == OK:
                op.snapshot = op.start
            history.ops.append(op)
            t = op.end + rng.randint(0, 200) * MS // 1000


# -- injectors ---------------------------------------------------------------------------------------


@dataclass
class Injected:
    history: History
    expected: dict[str, int]
    """Exact count of every anomaly class the corruption creates (others stay 0, ``recovered`` aside)."""
    facts: dict = field(default_factory=dict)
    """What the test may also check (e.g. ``lost_min``, the lags of the stale reads)."""


def pad(history: History, applied: int = 0, unapplied: int = 0) -> History:
    """Prepend indeterminate increments (a correct history stays correct): ``applied`` of them took
    effect (they raise the count above the ok keys: room for lost writes), ``unapplied`` did not (they
    raise U and every read's upper bound: room for extra applications)."""
    h = history.copy()
    ops, events = [], []
    for i in range(applied + unapplied):
        key = h.fresh_key("pad")
        op = Op("increment", 100 * US + i * US, 4 * MS, INFO, key, "fleet", 0, "sim:pad", 504)
        op.error, op.served_by = "504 Gateway Timeout", "balancer"
        ops.append(op)
        if i < applied:
            events.append(Event(2 * MS + i * US, key))
    if ops:
        h.splice(0, 5 * MS, ops, events)
    return h


def _applied_once(h: History) -> list[str]:
    counts: dict[str, int] = {}
    for e in h.events:
        if e.key is not None:
            counts[e.key] = counts.get(e.key, 0) + 1
    return sorted(k for k, n in counts.items() if n == 1)


def _ok_keys(h: History) -> list[str]:
    return sorted(k for k, o in h.key_outcomes().items() if o == OK)


def lose_acknowledged(history: History, k: int, rng: random.Random) -> Injected | None:
    """k acknowledged increments the store never applied (their ok answers carry no value).

    k recovered info increments at the start keep the count, hence every read and the bounds, from
    showing it: only the ledger does (``lost``). Without a ledger nothing can tell.
    """
    h = pad(history, applied=k)
    candidates = sorted(set(_ok_keys(h)) & set(_applied_once(h)))
    k = min(k, len(candidates))
    if not k:
        return None
    lost = set(rng.sample(candidates, k))
    h.events = [e for e in h.events if e.key not in lost]
    for op in h.ops:
        if op.key in lost and op.outcome == OK:
            op.value = None
    return Injected(h, {"lost": k} if h.ledger else {}, {"keys": sorted(lost)})


def apply_twice(history: History, k: int, rng: random.Random) -> Injected | None:
    """k extra applications of keys already applied (a key may get several), each with its ledger row,
    some time after the key's first application. k unapplied info increments at the start leave room
    in U and in the reads' upper bounds; with a ledger it is ``duplicated`` = k, without one nothing."""
    h = pad(history, unapplied=k)
    firsts = {e.key: e.at for e in h.events if e.key is not None}
    if not firsts:
        return None
    end = h.quiet[-1]
    for key in rng.choices(sorted(firsts), k=k):
        h.events.append(Event(rng.randint(firsts[key], end), key))
    return Injected(h, {"duplicated": k} if h.ledger else {})


def apply_unledgered(history: History, k: int, rng: random.Random) -> Injected:
    """k applications the ledger does not show: ``duplicated`` = k and V != |A|."""
    h = pad(history, unapplied=k)
    for _ in range(k):
        h.events.append(Event(rng.randint(h.quiet[1], h.quiet[-1]), None, ledgered=False))
    return Injected(h, {"duplicated": k, "final_ledger_mismatch": 1} if h.ledger else {})


def apply_unattempted(history: History, k: int, rng: random.Random) -> Injected:
    """k keys no client sent, applied with a ledger row: ``unexpected`` = k."""
    h = pad(history, unapplied=k)
    for _ in range(k):
        h.events.append(Event(rng.randint(h.quiet[1], h.quiet[-1]), h.fresh_key("ghost")))
    return Injected(h, {"unexpected": k} if h.ledger else {})


def fail_applied(history: History, k: int, rng: random.Random) -> Injected | None:
    """k applied keys whose every attempt answered a definite failure (429, or 503 from the fleet):
    ``failed_applied`` = k. k unapplied info increments keep U and the reads' upper bounds."""
    h = pad(history, unapplied=k)
    applied = sorted({e.key for e in h.events if e.key is not None} & set(h.key_outcomes()))
    if len(applied) < k:  # fewer keys to fail than padding: the spare padding only widens U
        k = len(applied)
    if not k:
        return None
    chosen = set(rng.sample(applied, k))
    for op in h.ops:
        if op.key in chosen:
            op.outcome, op.value = FAIL, MODEL
            _answer(op, rng)
    return Injected(h, {"failed_applied": k} if h.ledger else {}, {"keys": sorted(chosen)})


def roll_back_at_end(history: History, k: int, rng: random.Random) -> Injected:
    """After the load, k more increments are acknowledged and applied with ledger rows, then the
    counter loses them (the ledger keeps them): V != |A| and nothing else (k recovered increments at
    the start keep L <= V; no read sees the lost ones, so the final read is no step back)."""
    h = pad(history, applied=k)
    ops, events, t = [], [], MS
    for _ in range(k):
        key = h.fresh_key("late")
        end = t + rng.randint(200, 2_000) * US
        ops.append(Op("increment", t, end, OK, key, "fleet", 0, "sim:late", 200, None, _SERVED_BY["fleet"]))
        events.append(Event(rng.randint(t, end), key))
        t = end + MS
    events.append(Event(t, None, delta=-k, ledgered=False))
    h.splice(len(h.quiet) - 1, t + MS, ops, events)
    return Injected(h, {"final_ledger_mismatch": 1} if h.ledger else {})


def lose_at_end(history: History, k: int, rng: random.Random) -> Injected:
    """After the load, m = k + (C - L) increments are acknowledged (values C+1..C+m, which no other key
    gets) and never applied. Without a ledger only the bounds see it: lost_min = k. With one, each is
    ``lost`` too."""
    h = history.copy()
    state = h.state_at(h.quiet[-1])
    m = k + state.count - state.lower
    ops, t = [], MS
    for i in range(m):
        end = t + rng.randint(200, 2_000) * US
        op = Op("increment", t, end, OK, h.fresh_key("late"), "lambda", 0, "sim:late", 200)
        op.served_by, op.value = _SERVED_BY["lambda"], state.count + 1 + i
        ops.append(op)
        t = end + MS
    h.splice(len(h.quiet) - 1, t, ops, [])
    expected = {"bounds": 1, "lost": m} if h.ledger else {"bounds": 1}
    return Injected(h, expected, {"lost_min": k, "overcount_min": 0})


def overapply_at_end(history: History, k: int, rng: random.Random) -> Injected:
    """After the load, the counter gains m = k + (U - C) increments nobody sent, without ledger rows:
    overcount_min = k. With a ledger they are also ``duplicated`` (unledgered) and V != |A|."""
    h = history.copy()
    state = h.state_at(h.quiet[-1])
    m = k + state.upper - state.count
    events = [Event(MS + rng.randint(0, 1_000) * US, None, ledgered=False) for _ in range(m)]
    h.splice(len(h.quiet) - 1, 3 * MS, [], events)
    expected = {"bounds": 1}
    if h.ledger:
        expected |= {"duplicated": m, "final_ledger_mismatch": 1}
    return Injected(h, expected, {"lost_min": 0, "overcount_min": k})


def share_values(history: History, k: int, rng: random.Random) -> Injected | None:
    """k pairs of keys whose ok answers carry the same value: the second key of each pair is answered
    the first one's value. ``duplicate_value`` = k; with a ledger each ok answer of a second key is a
    ``value_mismatch`` too."""
    h = history.copy()
    values = dict(zip((id(op) for op in h.ops), h.values(), strict=True))
    valued = sorted({op.key for op in h.ops if op.kind == "increment" and values[id(op)] is not None})
    k = min(k, len(valued) // 2)
    if not k:
        return None
    chosen = rng.sample(valued, 2 * k)
    first = {op.key: values[id(op)] for op in reversed(h.ops) if values[id(op)] is not None and op.key}
    mismatched = 0
    for holder, taker in zip(chosen[:k], chosen[k:], strict=True):
        for op in h.ops:
            if op.key == taker and values[id(op)] is not None:
                op.value = first[holder]
                mismatched += 1
    return Injected(
        h, {"duplicate_value": k, "value_mismatch": mismatched} if h.ledger else {"duplicate_value": k}
    )


def misreport_values(history: History, k: int, rng: random.Random) -> Injected | None:
    """k ok increment answers carry a value no application had (a negative one, so no other key holds
    it): ``value_mismatch`` = k with a ledger; nothing can tell without one."""
    h = history.copy()
    values = h.values()
    rows = [op for op, v in zip(h.ops, values, strict=True) if op.kind == "increment" and v is not None]
    k = min(k, len(rows))
    if not k:
        return None
    for i, op in enumerate(rng.sample(rows, k)):
        op.value = -1 - i
    return Injected(h, {"value_mismatch": k} if h.ledger else {})


def drop_finals(history: History, rng: random.Random) -> Injected:
    """Every final attempt failed (a timeout): V is unknown, ``final_missing``."""
    h = history.copy()
    for op in h.ops:
        if op.kind == "final":
            op.outcome, op.status, op.error, op.served_by, op.snapshot = (
                INFO,
                0,
                "TimeoutError: timed out",
                None,
                None,
            )
    return Injected(h, {"final_missing": 1})


def disagreeing_final(history: History, rng: random.Random) -> Injected:
    """One more final read, after the others, answers V + 1: ``final_mismatch`` (V unknown)."""
    h = history.copy()
    last = max(op.end for op in h.ops)
    op = Op("final", last + MS, last + 2 * MS, OK, endpoint="lambda", worker="sim:final", served_by="env-9")
    op.value = h.final_value() + 1
    h.ops.append(op)
    return Injected(h, {"final_mismatch": 1})


def stale_reads(history: History, k: int, depth: int, at: int, rng: random.Random) -> Injected:
    """At quiet instant ``at`` (C, L, M known), j = C - L + depth ok increments one after another,
    then k reads that start together and return values v in [max(M, L), C + depth - 1]: each is
    below its lower bound L + j (stale) and not below any earlier read (no step back).

    ``facts["lags"]``: per read, (lower - value, ms since the ok increment that made the lower bound
    exceed the value ended), by construction: the (v - L + 1)-th of the segment's increments.
    """
    h = history.copy()
    state = h.state_at(h.quiet[at])
    j = state.count - state.lower + depth
    ops, events, ends, t = [], [], [], MS
    for _ in range(j):
        end = t + rng.randint(100, 5_000) * US
        key = h.fresh_key("seg")
        ops.append(Op("increment", t, end, OK, key, "fleet", 0, "sim:seg", 200, None, _SERVED_BY["fleet"]))
        events.append(Event(rng.randint(t, end), key))
        ends.append(end)
        t = end + rng.randint(0, 3_000) * US
    start = t + rng.randint(1, 20_000) * US
    lags = []
    low = max(state.max_read, state.lower)
    high = state.count + depth - 1
    for _ in range(k):
        read = Op(
            "read", start, start + rng.randint(100, 9_000) * US, OK, endpoint="lambda", worker="sim:seg"
        )
        read.served_by = _SERVED_BY["lambda"]
        read.value = rng.randint(low, high)
        lags.append((state.lower + j - read.value, (start - ends[read.value - state.lower]) / MS))
        ops.append(read)
    h.splice(at, start + 10 * MS, [*ops], events)
    return Injected(h, {"stale_read": k}, {"lags": lags})


def impossible_reads(history: History, k: int, depth: int, at: int, rng: random.Random) -> Injected:
    """At quiet instant ``at``, k reads (together) return values in [U+1, U+depth] before anything is
    sent; then j = U - C + depth increments, so every later read is at least as high."""
    h = history.copy()
    state = h.state_at(h.quiet[at])
    ops, events, t = [], [], MS
    for _ in range(k):
        read = Op("read", t, t + rng.randint(100, 5_000) * US, OK, endpoint="fleet", worker="sim:seg")
        read.served_by, read.value = _SERVED_BY["fleet"], rng.randint(state.upper + 1, state.upper + depth)
        ops.append(read)
    t = max(op.end for op in ops) + MS
    for _ in range(state.upper - state.count + depth):
        end = t + rng.randint(100, 5_000) * US
        key = h.fresh_key("seg")
        ops.append(Op("increment", t, end, OK, key, "fleet", 0, "sim:seg", 200, None, _SERVED_BY["fleet"]))
        events.append(Event(rng.randint(t, end), key))
        t = end + MS
    h.splice(at, t, ops, events)
    return Injected(h, {"impossible_read": k}, {"upper": state.upper})


def non_monotonic_reads(history: History, k: int, at: int, rng: random.Random) -> Injected:
    """At quiet instant ``at``, one increment is in flight (applied) while a read returns C + 1 and then
    k reads, one after another, return C: each is within its bounds (L <= C, C + 1 <= U + 1) and behind
    the first read."""
    h = history.copy()
    state = h.state_at(h.quiet[at])
    key = h.fresh_key("seg")
    t = 2 * MS
    first = Op("read", t, t + rng.randint(100, 3_000) * US, OK, endpoint="fleet", worker="sim:seg")
    first.value, first.served_by = state.count + 1, _SERVED_BY["fleet"]
    ops = [first]
    t = first.end
    for _ in range(k):
        t += rng.randint(1, 3_000) * US
        read = Op("read", t, t + rng.randint(100, 3_000) * US, OK, endpoint="lambda", worker="sim:seg")
        read.value, read.served_by = state.count, _SERVED_BY["lambda"]
        ops.append(read)
        t = read.end
    t += MS
    ops.append(Op("increment", MS, t, OK, key, "fleet", 0, "sim:seg2", 200, None, _SERVED_BY["fleet"]))
    h.splice(at, t + MS, ops, [Event(MS + 500 * US, key)])
    return Injected(h, {"non_monotonic_read": k}, {"earlier_value": state.count + 1})
