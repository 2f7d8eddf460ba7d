"""PIX value codes: CPF/CNPJ documents, DICT keys, network identifiers, ISO reasons, BR Codes.

Pure functions and frozen values; nothing here does I/O. Every refusal is an
``InvalidInput`` subclass with a stable ``code`` and a message that names the
rule and field, never the personal data that broke it.
"""
