import sys

from .gate import main

sys.exit(main())
