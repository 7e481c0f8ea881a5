"""What leaves the server in the background: mail and webhook deliveries, each queued in the
change's own transaction and sent by a loop in every worker (outbound.sender)."""
