"""The HTTP platform: error mapping, hardening middleware, rate limits, log redaction."""
