"""Run the command line: ``python -m edgecnn``."""

from edgecnn.cli import main

main()
