"""`keras-zoo` for the docs pages' shell blocks, without importing TensorFlow once per command.

A page's examples start a `keras-zoo` process per command, and each spent most of its time importing
TensorFlow and Keras (about 6 s of CPU here, against a second or two of work for the small examples):
with some 40 such commands the docs tests paid minutes of imports. The page driver of tests/docblocks.py
imports TensorFlow and Keras (its python blocks need them anyway) and, before it runs any block, forks
a server (`start_in_fork`); the page's ``keras-zoo`` shim is the client:

    python cli_zygote.py run ARGS...       # the command's argv, cwd, environment and stdin/stdout/
                                           # stderr go to the server; it exits with the child's status

The server forks a child per command, taken before TensorFlow's runtime has started (the server only
imported it), so each starts from a clean TensorFlow as a new process would. It imports keras_zoo
itself, after taking the command's environment and working directory, and runs ``python -m
keras_zoo.cli`` (`keras_zoo.cli.console_main`) as the installed program does. ``list``, ``info`` and
``--help`` (no TensorFlow) and any command where no server answers run as processes of their own.

The real program's start-up (the console script, the quiet TensorFlow import) is tested by
tests/test_cli.py and run by .ci/run; this is a test harness for the docs pages only.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time

_FDS = (0, 1, 2)
# The commands that never import TensorFlow (keras_zoo.cli._WITHOUT_TENSORFLOW; a test keeps the two
# equal): they start in a fraction of a second as processes of their own, without a server.
WITHOUT_TENSORFLOW = ("list", "info")
_SEPARATORS = re.compile(r"&&|\|\||[|;&()]")  # between the commands of a shell line
_COMMAND = re.compile(r"(?:^|\s)keras-zoo(?=\s|$)(.*)")


def needs_tensorflow(argv) -> bool:
    """Whether `keras-zoo ARGV` imports TensorFlow (not for list, info and help)."""
    return bool(argv) and argv[0] not in WITHOUT_TENSORFLOW and not {"-h", "--help"} & set(argv)


def needs_server(code: str) -> bool:
    """Whether a shell block runs a `keras-zoo` command that imports TensorFlow."""
    commands = (_COMMAND.search(part) for line in code.splitlines() for part in _SEPARATORS.split(line))
    return any(needs_tensorflow(match.group(1).split()) for match in commands if match)


ADDRESS = "KERAS_ZOO_DOCS_CLI_SERVER"        # the socket's path, in the page's environment
SERVER_PID = "KERAS_ZOO_DOCS_CLI_SERVER_PID"  # while it lives, a client waits for its socket


def _read_exactly(conn, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client went away")
        data += chunk
    return data


def _run_command(request: dict) -> int:
    """In the forked child: become the command, run it, return its exit status."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["keras-zoo", *request["argv"]]
    import runpy

    try:
        runpy.run_module("keras_zoo.cli", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    return 0


def _child(conn, server, request, fds) -> None:
    import atexit

    code = 1
    try:
        server.close()
        conn.close()
        for target, fd in zip(_FDS, fds):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        atexit._clear()  # the exit handlers are the command's own, as in a process of its own
        code = _run_command(request)
    except BaseException:  # noqa: BLE001 - the child must always exit below
        import traceback

        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()  # e.g. keras_zoo.data.cache removing its folder
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if 0 <= code < 256 else 1)


def listen(path: str) -> socket.socket:
    """The server's socket at `path`, listening (clients connect only once it does)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path + ".binding")
    server.listen(16)
    os.replace(path + ".binding", path)
    return server


def serve_forever(server: socket.socket) -> None:
    """Fork a child per request (TensorFlow and Keras must be imported, their runtime not started)."""
    import threading

    def wait_and_reply(conn, pid):
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        try:
            conn.sendall(str(128 - code if code < 0 else code).encode())
        finally:
            conn.close()

    while True:
        conn, _ = server.accept()
        try:
            header, fds, _, _ = socket.recv_fds(conn, 8, len(_FDS))
            header += _read_exactly(conn, 8 - len(header))
            request = json.loads(_read_exactly(conn, int.from_bytes(header, "big")))
        except (OSError, ValueError, ConnectionError):
            conn.close()
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(conn, server, request, fds)
        for fd in fds:
            os.close(fd)
        threading.Thread(target=wait_and_reply, args=(conn, pid), daemon=True).start()


def start_in_fork(path: str) -> int:
    """Import TensorFlow and Keras here, then serve at `path` from a fork of this process (which goes
    on, TensorFlow imported for its own use); returns the server's pid. The docs page driver calls it
    before it runs any block, so the page imports TensorFlow once for its python blocks and commands."""
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    server = listen(path)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            serve_forever(server)
        finally:
            os._exit(1)
    server.close()
    return pid


def _connect():
    """A connection to the page's server, waiting while it starts; None where there is none."""
    path, pid = os.environ.get(ADDRESS), os.environ.get(SERVER_PID)
    if not path:
        return None
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(path)
            return conn
        except OSError:
            conn.close()
        try:
            os.kill(int(pid), 0)
        except (OSError, TypeError, ValueError):
            return None  # no server (any more): run the program in a process of its own
        time.sleep(0.05)


def run(argv: list) -> int:
    conn = _connect() if needs_tensorflow(argv) else None
    if conn is None:
        os.execv(sys.executable, [sys.executable, "-m", "keras_zoo.cli", *argv])
    payload = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    socket.send_fds(conn, [len(payload).to_bytes(8, "big")], list(_FDS))
    conn.sendall(payload)
    reply = b""
    while True:
        chunk = conn.recv(16)
        if not chunk:
            break
        reply += chunk
    return int(reply) if reply.strip().isdigit() else 1


if __name__ == "__main__":
    if sys.argv[1:2] != ["run"]:
        sys.exit("usage: cli_zygote.py run ARGS...")
    sys.exit(run(sys.argv[2:]))
