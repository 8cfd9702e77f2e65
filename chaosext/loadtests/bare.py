"""A bare FastHttpUser hitting one endpoint, no recorder: the baseline the journey file's
overhead is measured against (``scripts/bench.py --only load`` in a checkout).

``BARE_PATH`` picks the endpoint (default: the first page of the Store API product list).
"""
import os

from locust import FastHttpUser, constant, task

PATH = os.environ.get("BARE_PATH", "/wp-json/wc/store/v1/products?per_page=20&page=1")


class Bare(FastHttpUser):
    wait_time = constant(0)

    @task
    def hit(self) -> None:
        self.client.get(PATH, name="bare")
