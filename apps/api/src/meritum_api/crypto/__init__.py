"""Encryption at rest: master keys (``keys``) and the streaming file format (``streaming``)."""
