"""One exception type for mistakes a user can fix; the CLI prints it as one line, no traceback."""


class UserError(Exception):
    """Bad input or a missing prerequisite, with a message that says what to do."""


class MissingPrerequisite(UserError):
    """Something a run needs is not here (the Hub, the data, credentials): the run is skipped, with why."""
