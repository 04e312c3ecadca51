"""``python -m seqweave`` (and ``torchrun -m seqweave``) runs the command line."""

import sys

from seqweave.cli import main

sys.exit(main())
