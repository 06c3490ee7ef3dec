"""`python -m tinygrad_rnn`: the `tinygrad-rnn` command line."""
import sys

from .cli import main

sys.exit(main())
