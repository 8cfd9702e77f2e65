# The README names these targets. `make test` and `make gameday` bootstrap what is missing.
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: bootstrap test test-fast gameday retry-comparison bench lab-up lab-down clean

bootstrap:
	./scripts/bootstrap.sh

# One pytest-xdist worker per core, one test file per worker at a time (module fixtures and a
# file's own lab stay together), the longest files first (tests/conftest.py); each worker runs
# its own lab on its own ports.
XDIST := -n auto --dist loadfile --no-loadscope-reorder

test: bootstrap
	$(VENV)/python -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: bootstrap
	$(VENV)/python -m pytest $(XDIST) -m "not lab" $(PYTEST_ARGS)

gameday: bootstrap
	./scripts/gameday.sh

retry-comparison: bootstrap
	$(VENV)/gameday run elasticache-test-failover --run-id cache-retry-$$(date +%s) --keep-lab ; \
	$(VENV)/gameday run elasticache-test-failover --run-id cache-no-retry-$$(date +%s) --shop-setting retry=false ; \
	$(VENV)/gameday report --compare $$(ls -d reports/cache-retry-* | tail -1) $$(ls -d reports/cache-no-retry-* | tail -1)

bench: bootstrap
	$(VENV)/python scripts/bench.py

lab-up: bootstrap
	$(VENV)/gameday lab up

lab-down:
	$(VENV)/gameday lab down

clean: lab-down
	rm -rf .lab
