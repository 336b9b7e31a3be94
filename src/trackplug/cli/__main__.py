"""``python -m trackplug.cli`` runs the ``trackplug`` command."""

from . import main

main()
