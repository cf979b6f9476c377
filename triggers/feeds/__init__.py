"""Watched feeds: HTTP fetching (conditional, streamed, retried) and the built-in open-data APIs.

The bodies end up in the same ingesters as files (`orchestrator.app.ingest`): no second parser.
"""
