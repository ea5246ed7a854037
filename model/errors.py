"""Errors the user can act on. The CLI turns them into one line on stderr and an exit status."""


class VideoPoetError(Exception):
    """A failure while doing valid work (exit status 1): unreadable file, mismatched checkpoint..."""

    exit_code = 1


class InvalidInput(VideoPoetError):
    """The request itself is wrong (exit status 2): bad option value, unknown preset, bad extension..."""

    exit_code = 2


class InvalidSampling(InvalidInput):
    """A sampling option out of range; `field` names it, so the CLI can name its flag and a preset its key."""

    def __init__(self, field: str, detail: str):
        super().__init__(f"sampling.{field} {detail}")
        self.field, self.detail = field, detail
