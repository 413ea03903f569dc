"""`python -m chggen_plugins.cli`: the same command as `chggen`."""

import sys

from chggen_plugins.cli.app import main

sys.exit(main())
