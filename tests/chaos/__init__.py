"""``make chaos``: the whole pipeline, two replicas of every service, under a fault schedule
(see docs/reliability.md). ``python -m tests.chaos --help``."""
