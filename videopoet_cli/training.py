"""`videopoet data`, `videopoet train` and `videopoet eval`: registered onto the main app."""

import typer


def register(app: typer.Typer) -> None:
    """Add the data/train/eval commands to `app` (filled in by the training work)."""
