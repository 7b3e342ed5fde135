"""The physician's web app: server-rendered pages over the reports services."""
