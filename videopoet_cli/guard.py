"""Errors as the user sees them: one `error:` line on stderr and an exit status, never a traceback.

InvalidInput -> 2 (usage), VideoPoetError -> 1 (failure), Ctrl-C -> 130, SIGTERM -> 143. Shared by every
command module (main, training), so neither imports the other for it.
"""

import os
import sys
import traceback
from contextlib import contextmanager
from typing import Iterator

import typer

from model.errors import InvalidInput, VideoPoetError


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so temp files and reservations are removed as for Ctrl-C."""


def one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def print_error(message: str) -> None:
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()


def print_internal(e: BaseException) -> None:
    if os.environ.get("VIDEOPOET_DEBUG") == "1":
        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
    print_error(f"internal error: {type(e).__name__}: {e}")


@contextmanager
def guard() -> Iterator[None]:
    """Run a command body: known errors become one stderr line and an exit status, never a traceback."""
    try:
        yield
    except typer.Exit:
        raise
    except InvalidInput as e:
        print_error(str(e))
        raise typer.Exit(2) from None
    except VideoPoetError as e:
        print_error(str(e))
        raise typer.Exit(1) from None
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (main._on_sigterm): files are cleaned up on the way out
        sys.stderr.write("terminated\n" if isinstance(e, Terminated) else "interrupted\n")
        raise typer.Exit(143 if isinstance(e, Terminated) else 130) from None
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): stop quietly, and keep Python from complaining
        # about the dead pipe when it flushes stdout at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        print_error("output pipe closed")
        raise typer.Exit(1) from None
    except Exception as e:  # a bug: one line (the traceback with VIDEOPOET_DEBUG=1)
        print_internal(e)
        raise typer.Exit(1) from None
