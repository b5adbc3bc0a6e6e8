"""``python -m mlsecops.cli``."""

import sys

from mlsecops.cli.main import main

sys.exit(main())
