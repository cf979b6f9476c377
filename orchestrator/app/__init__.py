"""The application layer: one `App` (engine, settings, clock, zone, channels) and the services every door calls.

The CLI, the Prefect flows and the web app all go through these services; they talk to the store and the
channels, the core decides.
"""
