"""The ``cipherdesk`` command line: :mod:`gateway.cli.main` builds the parser from the
subcommand modules of this package, which share :mod:`gateway.cli.common`."""
