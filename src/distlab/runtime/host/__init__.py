"""The host: a node's protocol instances, each a sans-I/O core under the one generic driver,
reaching the world through ports (Clock, Transport, Storage)."""
