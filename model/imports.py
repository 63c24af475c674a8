"""Keeping pandas out of processes that serve models which never see a DataFrame.

scikit-learn imports pandas when it is installed (`sklearn.utils.fixes` tries it at import, and keeps
the module in a variable nothing reads); that costs about 0.4 s and 30 MB of every cold start. With
pandas installed for the models fitted on DataFrames, numeric models would pay that too. So
scikit-learn is first imported with pandas hidden: its import fails there, and scikit-learn carries on
as it does without pandas. A model that needs a DataFrame imports pandas later, when it builds one;
from then on scikit-learn finds it in `sys.modules` as usual (`sklearn.utils._dataframe`).
"""

import contextlib
import importlib.abc
import sys


class _Hide(importlib.abc.MetaPathFinder):
    def __init__(self, names: tuple[str, ...]):
        self._names = names

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".", 1)[0] in self._names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (hidden while importing scikit-learn)",
                                      name=fullname)
        return None


@contextlib.contextmanager
def hidden(*names: str):
    """Inside the block, importing any of `names` (not yet imported) fails as if it were not installed."""
    finder = _Hide(tuple(n for n in names if n not in sys.modules))
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def import_sklearn() -> None:
    """Imports scikit-learn without pandas (see the module docstring); a no-op once it is imported."""
    if "sklearn.utils.fixes" in sys.modules:
        return
    with hidden("pandas"):
        import sklearn.utils.fixes  # noqa: F401 - the one module that imports pandas at import time
