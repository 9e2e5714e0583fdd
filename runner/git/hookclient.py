"""The pre-receive hook of a push served by `strom web`: it hands the pushed refs to the web process
serving the push (which has the loader imported already) over the socket named by STROM_HOOK_SOCKET,
prints the answer and exits with its status. A push that could not be checked is refused.

Started as `python -I -S`, importing only what the interpreter has built in (`_socket`, not `socket`
or `json`): it starts in half the time a plain Python does, and a tenth of one importing the loader.

The request: a `NAME=value` line for each of git's quarantine variables, an empty line, then the hook's
stdin. The answer: the exit status on a line of its own, then what the pusher sees.
"""

import _socket
import os
import sys

__all__ = ["QUARANTINE", "TIMEOUT", "main"]

TIMEOUT = 300.0  # seconds: checking is quick, but a server that never answers must not hold the push forever
QUARANTINE = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH")


def main() -> int:
    names = "".join(f"{name}={os.environ[name]}\n" for name in QUARANTINE if name in os.environ)
    request = f"{names}\n{sys.stdin.read()}".encode("utf-8", "surrogateescape")
    try:
        conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            conn.settimeout(TIMEOUT)
            conn.connect(os.environ["STROM_HOOK_SOCKET"])
            conn.sendall(request)
            conn.shutdown(_socket.SHUT_WR)
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        finally:
            conn.close()
        status, _, output = b"".join(chunks).partition(b"\n")
        code = int(status)
    except (OSError, ValueError, KeyError) as exc:
        output, code = f"strom: the push could not be checked, so it is refused ({exc}); push again\n".encode(), 1
    sys.stdout.buffer.write(output)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
