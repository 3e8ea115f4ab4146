"""``python -m flownb`` = the ``flownb`` command."""

from .cli import main

raise SystemExit(main())
