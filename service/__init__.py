"""The HTTP side of the function: configuration, request parsing, protocols, errors and logs."""
