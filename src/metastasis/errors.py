"""The one error type users see: a field name and what is wrong with it."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user, reported by the command line as ``error: <field>: <message>``.

    Parameters
    ----------
    field:
        Dotted name of the offending field (``followup.exams.0.every_months``) or the option name.
    message:
        What is wrong, including the allowed range or values where there is one.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
