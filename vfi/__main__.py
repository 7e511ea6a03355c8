"""``python -m vfi`` — see :mod:`vfi.cli`."""

from vfi.cli import main

raise SystemExit(main())
