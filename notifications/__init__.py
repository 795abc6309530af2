"""Notifications: list sync, forwarded deactivations, auto-replies, digests and spike alerts.

The pipeline and this package's planners write outbox documents; `notifications.runner.run_once`
claims, sends and records them (see notifications/outbox.py for the at-most-once rules).
"""
