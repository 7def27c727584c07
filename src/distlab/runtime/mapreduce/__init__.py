"""The MapReduce processes: the coordinator and the workers, their gRPC services, task
execution, the fetch of intermediate data between workers, and the coordinator's job log."""
