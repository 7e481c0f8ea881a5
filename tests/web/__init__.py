"""Tests of app/web: proxies, readiness, logs, deployment."""
