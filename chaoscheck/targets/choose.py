"""The target a run (or a dry run) of a scenario drives, from the options ``chaoscheck run`` and the
pytest plugin share: one place, so both make the same target with the same settings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaoscheck import runformat


def make_target(
    name: str,
    scenario: Any,
    run_dir: Path | None,
    *,
    urls: Mapping[str, str | None] | None = None,
    aws: Mapping[str, Any] | None = None,
) -> Any:
    """``local``, ``http`` or ``aws`` for ``scenario`` (its seed and ``safety`` settings), not started.

    ``run_dir`` None is a dry run: the local stack writes no log or X-Ray file, the AWS target no
    timeline. ``urls`` are the http target's tiers (``fleet``, ``lambda``; empty ones dropped); ``aws``
    holds ``stack``, ``region``, ``profile`` and ``allow_untagged``.
    """
    if name == "http":
        from chaoscheck.targets.http import HttpTarget

        return HttpTarget({tier: url for tier, url in (urls or {}).items() if url})
    if name == "aws":
        from chaoscheck.targets.aws import AwsTarget

        options = dict(aws or {})
        return AwsTarget(
            options.get("stack") or "",
            region=options.get("region"),
            profile=options.get("profile"),
            allow_untagged=bool(options.get("allow_untagged")),
            seed=scenario.seed,
            max_share=scenario.safety.max_share,
            accounts=scenario.safety.accounts,
            regions=scenario.safety.regions,
            run_dir=run_dir,
        )
    from chaoscheck.targets.local import LocalTarget

    return LocalTarget(
        scenario.stack,
        log_path=run_dir / runformat.STACK_LOG if run_dir is not None else None,
        seed=scenario.seed,
        max_share=scenario.safety.max_share,
        xray_path=run_dir / runformat.XRAY if run_dir is not None else None,
    )
