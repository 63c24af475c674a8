"""The one way tests and the benchmark pick a port for a server they start on 127.0.0.1."""

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right after this returns (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
