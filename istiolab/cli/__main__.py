"""``python -m istiolab.cli`` runs the command line."""

import sys

from istiolab.cli import main

sys.exit(main())
