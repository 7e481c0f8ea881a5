"""HTTP: one blueprint per area, thin over the services."""
