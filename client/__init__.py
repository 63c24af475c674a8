"""A small client for the deployed function: an ID token for the URL, retries on 429/503, a timeout.

    python -m client https://SERVICE-HASH-REGION.a.run.app/predict --features 5.1 3.5 1.4 0.2

See `python -m client --help`; `client.call.post` and `client.auth.id_token` are the library surface.
"""
