"""The one exception type for errors a user can cause."""


class VFIError(Exception):
    """A problem with the user's input or environment, described in one clear sentence.

    The CLI prints it as ``error: <message>`` and exits with status 2; the app shows it as ``gr.Error``.
    """


class Cancelled(VFIError):
    """The user cancelled a running interpolation."""
