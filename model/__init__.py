"""The model: training the default, the artifact format and its manifest, and loading it safely.

Nothing here imports scikit-learn at import time; the first load does, in the server worker.
"""

import pathlib

# Where `python -m model train` writes the default model, and where the function looks without MODEL_URI.
DEFAULT_MODEL_DIR = pathlib.Path(__file__).resolve().parent / "artifacts"
