"""``python -m dropengine`` runs the command line."""

from .cli import main

main()
