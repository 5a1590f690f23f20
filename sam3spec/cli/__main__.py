"""``python -m sam3spec.cli ...`` (e.g. under ``torchrun``) runs the command line."""

import sys

from sam3spec.cli import main

sys.exit(main())
