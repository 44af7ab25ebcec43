"""Runs as they live: a run's files and state file, how a run's program is launched and
supervised, its status, runs' own queue, the code snapshots queued and scheduled runs start
from, the trash that makes delete all or nothing, and
`runs.py`, which opens the database with the recovery of interrupted changes.

Imports the store, the launchers (for liveness and signals) and the rules and wrappers;
only the commands (and the supervisor process's bootstrap) import it.
"""
