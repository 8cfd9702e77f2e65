"""The `gameday` program: the CLI, run orchestration around `chaos run`, and the reports.

It sits above both the Chaos Toolkit extension (`chaosext`, what runs inside `chaos run`) and the
local lab (`woolab`), and is the only package that may import both.
"""
