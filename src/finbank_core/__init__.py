"""finbank's pure domain core: accounts on a double-entry ledger, PIX and auth.

Nothing in this package performs I/O or imports a driver or a framework; it
declares ports (``typing.Protocol``) that adapters in ``finbank_adapters``
implement.
"""
