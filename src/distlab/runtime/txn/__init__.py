"""Transactions on a node: the driver of the transaction core, its log on the WAL."""
