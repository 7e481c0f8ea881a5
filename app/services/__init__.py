"""What the tracker does: async use cases over an explicit session, one commit each."""
