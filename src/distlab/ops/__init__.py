"""Operating a cluster from outside: local clusters of processes, Docker compose projects,
the fault injector, waiting for leaders, load generation, and the Jepsen-style tester."""
