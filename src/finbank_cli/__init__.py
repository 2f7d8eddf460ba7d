"""The ``finbank`` command line: serve, demo, reconcile, relay, workers, dev stack, db, aws.

Works with no extra installed: ``finbank --help`` imports only the standard
library, and each subcommand names the pip extra it needs when it is missing
(see :mod:`finbank_cli.main`).
"""
