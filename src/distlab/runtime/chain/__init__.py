"""The chain replica in a node: its driver and the ports it reaches the world through."""
