"""RDS ``DescribeDBSubnetGroups`` and ElastiCache ``DescribeCacheSubnetGroups`` over the lab.

Why: an FIS subnet target (``aws:network:disrupt-connectivity``) cuts the subnets a database or
cache lives in; users find those through the DB instance's ``DBSubnetGroup`` and the cache's
``CacheSubnetGroupName``, then these calls. Both groups are built from ``woolab.facade.vpc``, the
same subnets EC2's DescribeSubnets answers, so the three APIs agree. Unknown names are the
models' ``DBSubnetGroupNotFoundFault`` / ``CacheSubnetGroupNotFoundFault``.
"""
from woolab.facade import vpc
from woolab.facade.protocol import model_error


def describe_db_subnet_groups(lab, params):
    group = vpc.db_subnet_group(lab.snapshot())
    name = params.get("DBSubnetGroupName")
    if name and name != group["DBSubnetGroupName"]:
        raise model_error("rds", "DBSubnetGroupNotFoundFault", f"DB subnet group '{name}' not found.")
    return {"DBSubnetGroups": [group]}


def describe_cache_subnet_groups(lab, params):
    group = vpc.cache_subnet_group(lab.snapshot())
    name = params.get("CacheSubnetGroupName")
    if name and name != group["CacheSubnetGroupName"]:
        raise model_error("elasticache", "CacheSubnetGroupNotFoundFault", f"Cache subnet group {name} not found.")
    return {"CacheSubnetGroups": [group]}


RDS_OPERATIONS = {"DescribeDBSubnetGroups": describe_db_subnet_groups}
ELASTICACHE_OPERATIONS = {"DescribeCacheSubnetGroups": describe_cache_subnet_groups}
