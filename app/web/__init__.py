"""Serving plumbing below the blueprints: trusted proxies, readiness, the logs."""
