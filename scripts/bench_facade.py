"""Benchmark section `facade`: the AWS facade's latency as a client sees it, DescribeDBInstances
through boto3 (target: < 50 ms per Describe call at p95).
"""

from __future__ import annotations

import statistics
import time

import boto3
from botocore.config import Config

from benchkit.core import Context, Section
from woolab import manage


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


def run(ctx: Context) -> None:
    result = describe_latency(manage.controller_url(ctx.config), n=20 if ctx.smoke else 200)
    ctx.figure("DescribeDBInstances median ms", result["median_ms"])
    ctx.figure("DescribeDBInstances p95 ms", result["p95_ms"], "target < 50 ms")


SECTION = Section("facade", run, lambda _args: 120.0, needs_lab=True,
                  about="DescribeDBInstances latency through the facade")
