"""The live view of a running game day: its phases as they happen, beside Locust's own web UI,
and the step-by-step mode that pauses between faults (docs/live-view.md)."""
