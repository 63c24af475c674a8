"""Errors of the rows a caller sent: the caller can fix them, so the HTTP edge answers 400."""


class InvalidInput(ValueError):
    """The rows do not fit the model's input schema, or the model refused them; the message says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
