"""Generated protobuf and gRPC code for protos/distlab/v1; regenerate with `make proto`."""
