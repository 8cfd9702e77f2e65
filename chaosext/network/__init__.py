"""Network impairments of an AZ (gray failures) on the lab: `actions` (impair, lift) and
`probes` (what is in force). On AWS the same faults run through FIS (chaosext.fis)."""
