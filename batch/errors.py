"""The one error that ends a task: input that is missing or unusable as a whole, a model that cannot
load, storage that fails. A bad row never raises it: it becomes an error line in the output."""


class BatchError(Exception):
    """The task cannot go on; the message says what is wrong and where."""
