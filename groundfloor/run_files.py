"""The run-directory contract: every file a run writes and every variable that names a run, in
one place. A run directory (`reports/<run-id>/`) holds what one run measured; the extension's
controls and probes, the Locust recorder, the lab's tools and the reports all find the same
files by these names (docs/architecture.md, "Run directory")."""

# environment variables
RUN_DIR_ENV = "GAMEDAY_RUN_DIR"  # the run directory of the run in progress (set by the run-directory control)
REPORTS_ENV = "GAMEDAY_REPORTS_DIR"  # where new run directories go (default ./reports)

# configuration key that names the run directory (below the environment variable)
RUN_DIR_KEY = "gameday_run_dir"

# files written during the run
JOURNAL = "journal.json"  # Chaos Toolkit's journal
EXPERIMENT = "experiment.json"  # the experiment as run
TARGET = "target.json"  # what the run was aimed at, with its configuration
TIMELINE = "timeline.jsonl"  # per second and journey step: requests, failures, latency
ORDERS = "orders.jsonl"  # acknowledged orders (the RPO ledger)
FAULTS = "faults.jsonl"  # injected faults and their milestones
PROGRESS = "progress.jsonl"  # where the experiment is, as it happens
NOT_MEASURED = "not-measured.jsonl"  # figures a run could not measure, and why
REPLICA_LAG = "replica-lag.jsonl"  # the DB cluster readers' lag, per reader and second (lab)
LOAD_SUMMARY = "load-summary.json"
LOAD_STARTED = "load-started.json"
LOAD_ERRORS = "load-errors.json"
LOAD_WORKERS = "load-workers.json"
REMEMBERED_CARTS = "remembered-carts.json"
SAFEGUARD = "safeguard.json"
NOTES = "notes.md"
INTERRUPTION = "interruption.json"  # the signals that stopped the run
CHAOS_CONSOLE_LOG = "chaos-console.log"  # what Chaos Toolkit printed, under --quiet
PAUSE, PAUSES, CONTINUE = "pause.json", "pauses.jsonl", "continue"

# files written by the reports
SUMMARY = "summary.json"
REPORT_HTML, REPORT_MD, JUNIT = "report.html", "report.md", "junit.xml"
