"""`python -m distlab` runs the `distlab` command."""

import sys

from distlab.cli.main import main

sys.exit(main())
