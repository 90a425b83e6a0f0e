"""Celery edge: the worker app, its thin tasks, and the sweeper/heartbeat loop."""
