"""``python -m metastasis``."""

import sys

from metastasis.cli import main

sys.exit(main())
