"""The pure core: planning decisions, campaign specs, send windows, schedules, statistics, links.

Nothing here opens a file, a socket or a database, nor reads the clock: every input is a value.
"""
