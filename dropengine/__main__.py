"""``python -m dropengine`` runs the command line."""

from .cli import run

run()
