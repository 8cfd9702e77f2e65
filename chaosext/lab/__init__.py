"""Faults only the local lab can inject (AWS offers no API to crash an RDS host or a cache node).

The extension still imports nothing from the lab: it reaches the lab's control routes over HTTP,
on the same loopback port as the lab's AWS-compatible API.
"""
