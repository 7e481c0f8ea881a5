"""The XSS corpus (payloads.txt) and the check that no payload became live HTML (checks.py)."""
