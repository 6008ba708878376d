"""The one exception type for bad user input.

Raise ``UserError("what is wrong: what to do")`` where input enters (data loading, the command line,
the parameters cell). ``python -m talklib`` prints its message as one line and exits with status 2.
"""


class UserError(Exception):
    """Bad input from a user. The message is one line: what is wrong and what to do."""
