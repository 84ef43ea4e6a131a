"""``python -m gateway.cli``: the ``cipherdesk`` command without the console script."""

from gateway.cli.main import main

main()
