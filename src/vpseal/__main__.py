"""``python -m vpseal``: the same as the ``vpseal`` command."""

from __future__ import annotations

import sys

from vpseal.cli import main

if __name__ == "__main__":
    sys.exit(main())
