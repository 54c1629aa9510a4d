"""Run the local stack: ``python -m counter.local --config stack.json --db counter.db``.

For humans, this prints the three URLs and runs until Ctrl-C. The control API's token comes from
``CHAOSCHECK_CONTROL_TOKEN``; without it a random token is made, which is written only to the
``--state-file`` (mode 0600, removed on exit), from which ``LocalStack.from_state_file`` attaches.
``LocalStack.start`` (counter/local/client.py) runs this same entry point as a child process.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path

import uvloop
import yaml
from pydantic import ValidationError

from counter.local.config import StackConfig
from counter.local.lifeline import die_with_parent
from counter.local.stack import TOKEN_ENV, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m counter.local", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, help="stack configuration, JSON or YAML (default: defaults)")
    source.add_argument("--config-json", help="stack configuration as a JSON string")
    parser.add_argument("--db", type=Path, required=True, help="the SQLite file of the counter store")
    parser.add_argument("--state-file", type=Path, help="where to write pid, URLs and token (mode 0600)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)

    die_with_parent()
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    try:
        if args.config is not None:
            raw = yaml.safe_load(args.config.read_text()) or {}
        elif args.config_json:
            raw = yaml.safe_load(args.config_json) or {}
        else:
            raw = {}
        config = StackConfig.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        print(f"error: bad stack configuration: {exc}", file=sys.stderr)
        return 2
    # taken out of the environment, so that no child process inherits it
    token = os.environ.pop(TOKEN_ENV, None) or secrets.token_urlsafe(32)
    uvloop.run(run(config, args.db.resolve(), token, args.state_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
