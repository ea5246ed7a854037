"""The `videopoet` command line: a thin Typer layer over `model.VideoPoet`."""
