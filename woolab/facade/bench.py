"""Latency of the facade as a client sees it: DescribeDBInstances through boto3.

Why: the acceptance asks that facade overhead be negligible (< 50 ms per Describe call);
`make bench` (scripts/bench.py) reports these figures.
"""

from __future__ import annotations

import statistics
import time

import boto3
from botocore.config import Config


def describe_latency(endpoint_url: str, n: int = 200, region: str = "us-east-1") -> dict:
    """Time ``n`` DescribeDBInstances calls (after one warm-up); median/p95/max in ms."""
    client = boto3.client("rds", endpoint_url=endpoint_url, region_name=region, aws_access_key_id="lab",
                          aws_secret_access_key="lab", config=Config(retries={"max_attempts": 1}))
    client.describe_db_instances()  # warm-up: connection, model loading on both sides
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        client.describe_db_instances()
        samples.append((time.perf_counter() - start) * 1000.0)
    samples.sort()
    return {"operation": "DescribeDBInstances", "n": n,
            "median_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[min(n - 1, int(0.95 * n))], 2),
            "max_ms": round(samples[-1], 2)}
