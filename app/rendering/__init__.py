"""Turning text into HTML: safe Markdown, and synchronous templates for parts rendered in bulk."""
