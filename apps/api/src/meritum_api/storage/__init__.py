"""Encrypted storage of report files: the interface (``base``) and its backends."""
