"""`python -m videopoet_cli` runs the `videopoet` command line."""

from .main import main

if __name__ == "__main__":
    main()
