"""Mechanisms every app shares: status transitions, stored files, job queues, roles, rate limits.

``core`` sits at the bottom of the app layers (``docs/architecture.md``): it imports no project
app, and every app may import it.
"""
