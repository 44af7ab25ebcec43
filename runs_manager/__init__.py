"""runs: a command-line run manager for machine-learning experiments."""
__version__ = "0.1.0"
