"""Database files written by hand, as a user or another machine would."""
from __future__ import annotations

SHA = "0123456789abcdef0123456789abcdef01234567"
DB = ".runs/.runs.yml"


def run_text(name: str, i: int, description: str = "") -> str:
    """The YAML text of one run, as `runs new` would have written it."""
    return (
        f"{name}:\n"
        f"  command: python train.py --seed {i}\n"
        f"  commit: {SHA}\n"
        f"  datetime: '2024-05-01T12:{i % 60:02d}:00+02:00'\n"
        f"  description: {description or f'seed {i:04d}'}\n"
        f"  host: box\n"
    )


def many(n: int, prefix: str = "run") -> str:
    return "".join(run_text(f"{prefix}{i}", i) for i in range(n))
