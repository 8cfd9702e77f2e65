"""AWS Query-protocol facade of the lab: RDS 2014-10-31 and ElastiCache 2015-02-02.

``woolab.facade.server.handle(lab, method, path, headers, body)`` answers one request.
"""
