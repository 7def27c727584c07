"""The Raft core bound to files, gRPC and an asyncio task."""
