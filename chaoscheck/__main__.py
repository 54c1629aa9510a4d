"""``python -m chaoscheck`` is the ``chaoscheck`` command."""

from chaoscheck.cli import main

main()
