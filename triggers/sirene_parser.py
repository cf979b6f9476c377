"""The Sirene parser in a process of its own, beside the writer: `parse_in_child` starts it and yields its chunks.

Why a second process: on a national stock, parsing (the CSV, the checks, a first load's rows) and writing (the
store's inserts) each keep a core busy. Why a plain `python -m triggers.sirene_parser` and not multiprocessing's
spawn: spawn runs the parent's main module again in the child (the CLI or a bench, with Prefect, SQLAlchemy and
the web app behind them), 1.5-2 s of imports before the first chunk while the writer waits; this child imports
the parser alone.

The chunks come back over a pipe as frames: the kind (one byte), the payload's length (eight bytes), the payload
(marshal bytes, or the words of an error). When the parent dies the pipe closes and the child's next write fails:
it stops. When the child dies the parent reads the end of the pipe before a last frame and says so.
"""

from __future__ import annotations

import gc
import json
import marshal
import os
import queue
import struct
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from triggers.model import Reject
from triggers.sirene import FirstLoadRows, SireneFormatError, built_chunks, chunked_records

KINDS = ("chunk", "rows", "arrow", "done", "error", "crash")
_LAST = {"done", "error", "crash", "end"}  # "end": the pipe closed before a last frame
_HEADER = struct.Struct("<BQ")
AHEAD = 4  # chunks the parser may run ahead of the writer (memory: a few MB each)
# The project's root, for the child's imports (it may not be installed, e.g. a revision under `bench --against`).
_ROOT = str(Path(__file__).resolve().parent.parent)
# Where an installed interpreter finds it anyway: not put before the standard library in the child's imports.
_SITE = {str(Path(sysconfig.get_path(name)).resolve()) for name in ("purelib", "platlib")}


class SireneParserError(RuntimeError):
    """The parser's process failed or died mid-file (not the file's fault: memory, a kill). Its words are French,
    for the person running the ingest."""

    def __init__(self, what: str) -> None:
        super().__init__(f"le processus qui lit le fichier Sirene : {what}")


def parse_in_child(path: str | os.PathLike[str], chunk_size: int, drop: bool, columnar: bool,
                   cutoffs: tuple[str, str, str] | None) -> Iterator[tuple[str, bytes]]:
    """Parse `path` in a child process; yields its chunks as (kind, marshal bytes): "chunk" (records), "rows"
    (a first load's columns) or "arrow" (a first load's Arrow batch). Raises `SireneFormatError` for a bad file,
    `SireneParserError` if the child fails or dies. The child is killed when the caller stops early."""
    args = json.dumps([os.path.abspath(path), chunk_size, drop, columnar, cutoffs])
    env = dict(os.environ)
    if _ROOT not in _SITE:  # a checkout, or a revision exported by `bench --against`
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")]))
    read_fd, write_fd = os.pipe()
    try:
        # -P: the working directory does not come before _ROOT in the child's imports.
        proc = subprocess.Popen([sys.executable, "-P", "-m", "triggers.sirene_parser", str(write_fd), args],
                                pass_fds=(write_fd,), env=env, stdin=subprocess.DEVNULL)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)  # the child's end: only the child may hold it, or its death would go unseen
    frames: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()
    # Why a thread: it keeps the pipe drained into a bounded queue, so the parser runs up to AHEAD chunks ahead
    # (a pipe alone holds 64 KB: the parser would wait for every chunk to be taken).
    reader = threading.Thread(target=_read_frames, args=(read_fd, frames, stop), name="sirene-parser", daemon=True)
    try:
        reader.start()
        while True:
            try:
                kind, payload = frames.get(timeout=5)
            except queue.Empty:
                if not reader.is_alive():  # it always sends a last frame: this is only a safety net
                    raise SireneParserError(f"sa liaison s'est interrompue (code de sortie {proc.poll()})") from None
                continue
            if kind == "done":
                proc.wait(30)  # it has closed the pipe: it exits
                return
            if kind == "error":
                raise SireneFormatError(payload.decode())
            if kind == "crash":
                raise SireneParserError(f"il a échoué ({payload.decode()})")
            if kind == "end":
                raise SireneParserError(f"il s'est arrêté (code de sortie {proc.wait()})")
            yield kind, payload
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if reader.ident is not None:
            reader.join(5)
        else:  # never started: the pipe is still ours to close
            os.close(read_fd)


def _read_frames(fd: int, frames: queue.Queue, stop: threading.Event) -> None:
    with open(fd, "rb") as pipe:
        while not stop.is_set():
            try:
                item = _next_frame(pipe)
            except Exception as exc:  # noqa: BLE001 - told to the writer, which raises
                item = ("crash", f"reading its pipe: {type(exc).__name__}: {exc}".encode())
            while not stop.is_set():
                try:
                    frames.put(item, timeout=0.5)
                    break
                except queue.Full:
                    continue
            if item[0] in _LAST:
                return


def _next_frame(pipe: Any) -> tuple[str, bytes]:
    """The pipe's next frame as (kind, payload); ("end", b"") where the pipe closes before a whole frame."""
    header = pipe.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return "end", b""
    code, size = _HEADER.unpack(header)
    if code >= len(KINDS):
        raise ValueError(f"unknown frame kind {code}")
    payload = pipe.read(size)
    return (KINDS[code], payload) if len(payload) == size else ("end", b"")


def _plain(rejects: list[Reject]) -> list[tuple]:
    # Rejects as tuples of text and numbers, which marshal writes (the parent makes them Rejects again).
    return [(r.line, r.field, r.reason, r.raw) for r in rejects]


def parse(path: str, chunk_size: int, send: Callable[[str, bytes], None], drop_out_of_scope: bool = False,
          columnar: bool = False, cutoffs: tuple[str, str, str] | None = None) -> None:
    """Parse `path` and send its chunks (`parse_in_child`'s kinds), then "done"; "error" with the words of a bad
    file, "crash" with any other failure.

    With `cutoffs` (a first load: today, the creation window's start, the young-business cutoff, ISO dates) the
    chunks carry business rows (`built_chunks`), not records: "rows" with their columns from the row reader,
    "arrow" with Arrow's IPC bytes of their values row after row from the columnar one
    (`triggers.sirene_columnar.row_major`)."""
    try:
        if columnar and cutoffs is not None:  # a first load's rows built by Arrow and sent as Arrow's IPC bytes
            from triggers.sirene_columnar import first_load_batches, ipc_bytes, row_major

            for batch, recent, rejects, read, skipped in first_load_batches(path, None, chunk_size,
                                                                            FirstLoadRows(*cutoffs)):
                send("arrow", marshal.dumps((ipc_bytes(row_major(batch)), recent, _plain(rejects), read, skipped), 2))
        else:
            if columnar:  # the pyarrow reader (triggers.sirene_columnar), same chunks
                from triggers.sirene_columnar import columnar_chunks

                chunks = columnar_chunks(path, None, chunk_size, drop_out_of_scope)
            else:
                chunks = chunked_records(path, None, chunk_size, drop_out_of_scope)
            if cutoffs is not None:
                for columns, recent, rejects, read, skipped in built_chunks(chunks, FirstLoadRows(*cutoffs).build):
                    # Version 2 (no object references): half the CPU of version 4 for these rows, 1.5 times the bytes.
                    send("rows", marshal.dumps((columns, recent, _plain(rejects), read, skipped), 2))
            else:
                for records, rejects, read, skipped in chunks:
                    # marshal: ~15 times cheaper than pickle for these tuples of str/bool/None.
                    send("chunk", marshal.dumps((records, _plain(rejects), read, skipped)))
        send("done", b"")
    except SireneFormatError as exc:
        send("error", str(exc).encode())
    except BrokenPipeError:
        raise  # the parent is gone: nobody to tell
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        send("crash", f"{type(exc).__name__}: {exc}".encode())


def main(argv: list[str]) -> int:
    """The child: `python -m triggers.sirene_parser FD ARGS`, ARGS the JSON of `parse`'s arguments."""
    fd, (path, chunk_size, drop, columnar, cutoffs) = int(argv[0]), json.loads(argv[1])
    # This process lives for one file and builds millions of short-lived acyclic tuples: the cyclic collector
    # would spend more time walking them than the reader spends making them (the ingest pauses it too).
    gc.disable()
    pipe = open(fd, "wb")  # noqa: SIM115 - closed below, or left to the exit when the parent is gone

    def send(kind: str, payload: bytes) -> None:
        pipe.write(_HEADER.pack(KINDS.index(kind), len(payload)))
        pipe.write(payload)  # buffered: written whole, whatever the pipe takes at a time
        pipe.flush()

    try:
        parse(path, chunk_size, send, drop, columnar, tuple(cutoffs) if cutoffs else None)
        pipe.close()
    except BrokenPipeError:
        os._exit(3)  # the parent is gone (killed, or it stopped reading): nothing left to do
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
