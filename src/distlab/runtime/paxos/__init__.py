"""The Multi-Paxos core bound to files, gRPC and an asyncio task."""
