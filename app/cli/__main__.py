"""``python -m app.cli``: the ``warroom`` command."""

from app.cli import main

main()
