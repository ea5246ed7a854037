"""`python -m videopoet_cli` runs the `videopoet` command line."""

from .main import app

if __name__ == "__main__":
    app(prog_name="videopoet")
