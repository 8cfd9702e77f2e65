"""The "ElastiCache" side of the lab: a Redis replication group under Sentinel, and its mechanics.

- :mod:`woolab.cache.setup`: nodes and Sentinels at start, a node (re)launch
- :mod:`woolab.cache.sentinel`: what the lab asks the Sentinels
- :mod:`woolab.cache.failover`: TestFailover, node deletion and creation
- :mod:`woolab.cache.watch`: roles that changed without the lab (Sentinel), stale primaries
"""
