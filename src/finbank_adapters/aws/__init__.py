"""AWS adapters. Import the modules you need (``aws.cognito``, ``aws.jwks``...):
this package imports nothing, so one service's SDK is not loaded for another's.
Without the ``aws`` extra, importing it raises ``MissingExtra`` naming the extra."""

from finbank_adapters._extras import require_extra

require_extra("finbank_adapters.aws", "aws", ["aioboto3", "botocore"])
