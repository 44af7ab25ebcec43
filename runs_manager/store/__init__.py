"""The runs database: the YAML file (the only truth), its derived SQLite index, the journal
that makes every change all or nothing, and the locked transactions that change it.

Imports only the rules and wrappers below it (errors, settings, fsutil, faults, outcome),
never the runtime or the commands above.
"""
