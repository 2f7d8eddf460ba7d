"""AWS adapters. Import the modules you need (``aws.cognito``, ``aws.jwks``...):
this package imports nothing, so one service's SDK is not loaded for another's."""
