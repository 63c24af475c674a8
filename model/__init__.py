"""The model: training the default, the artifact format and its manifest, and loading it safely.

Nothing here imports scikit-learn at import time; the first load does, in the server worker.
"""
