"""The lab's data path: a TCP relay on every node's address, and the impairments it applies
(docs/lab-network.md)."""
