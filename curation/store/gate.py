"""Taking turns on a store file: between processes (`flock` on `<store>.lock`, waiters
announced on `<store>.wait`, a record of the holder), between the threads of one process (a
shared warm instance), with a limit on every wait, and the store's files kept private (0600).
The protocol is described in `curation.store`'s docstring; only `curation.store` uses this.
"""

import fcntl
import functools
import os
import re
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from curation.errors import StoreBusyError, StoreError

SHARE_WINDOW_S = 0.05
POLL_S = 0.005


@dataclass
class LockStats:
    """How long this process waited on other processes' locks (for benchmarks)."""

    retries: int = 0
    total_wait_s: float = 0.0
    max_wait_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, waited: float, retries: int) -> None:
        with self._lock:
            self.retries += retries
            self.total_wait_s += waited
            self.max_wait_s = max(self.max_wait_s, waited)


LOCK_STATS = LockStats()
_UMASK = {"depth": 0, "saved": 0}
_UMASK_LOCK = threading.Lock()
PRIVATE = 0o600


@contextmanager
def private_files() -> Iterator[None]:
    """Files created inside (by DuckDB: the store, its write-ahead log) get mode 0600. The
    umask is process-wide: it is narrowed only for this call and restored by the last thread out."""
    with _UMASK_LOCK:
        if _UMASK["depth"] == 0:
            _UMASK["saved"] = os.umask(0o077)
            os.umask(_UMASK["saved"] | 0o077)
        _UMASK["depth"] += 1
    try:
        yield
    finally:
        with _UMASK_LOCK:
            _UMASK["depth"] -= 1
            if _UMASK["depth"] == 0:
                os.umask(_UMASK["saved"])


def reset_after_fork() -> None:
    """In a forked child: a fresh umask lock, and the usual umask if forked inside `private_files`."""
    global _UMASK_LOCK
    _UMASK_LOCK = threading.Lock()
    if _UMASK["depth"]:
        os.umask(_UMASK["saved"])
        _UMASK["depth"] = 0


def narrow(path: Path) -> None:
    """Mode 0600 for a file made with a wider one (by an older version); not ours: leave it."""
    with suppress(OSError):
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, PRIVATE)


_SECRET_OPTION = re.compile(r"token|key|password|secret", re.IGNORECASE)


def command_line(argv: list[str] | None = None) -> str:
    """This process's command line as a person typed it (`curation ingest big.jsonl`), with
    the values of secret-looking options (`--token`, `--api-key`, ...) hidden."""
    argv = list(sys.argv if argv is None else argv) or [""]
    first = argv[0]
    if first in ("", "-c"):
        head = "python -c ..."
    elif Path(first).name == "__main__.py":
        head = f"python -m {Path(first).parent.name}"
    else:
        head = Path(first).name
    words, hide = [head], False
    for arg in argv[1:]:
        name = arg.split("=", 1)[0]
        if hide:
            words.append("***")
            hide = False
        elif arg.startswith("--") and _SECRET_OPTION.search(name):
            hide = "=" not in arg
            words.append(shlex.quote(name) + ("" if hide else "=***"))
        else:
            words.append(shlex.quote(arg))
    text = " ".join(words)
    return text if len(text) <= 200 else text[:197] + "..."


@functools.cache
def _own_command() -> str:
    return command_line()


def _process_state(pid: int) -> str | None:
    """'T' for a stopped process, another letter for a live one, None if there is none."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except OSError:
            pass
        return "?"


def describe_holder(lock_path: Path) -> str:
    """Who holds the store, from the record in `<store>.lock` (`held by pid 1234 (...) for 31 s`)."""
    try:
        with open(lock_path, "rb") as fh:
            record = fh.read(4096).decode("utf-8", "replace").strip()
        pid_text, since_text, cmd = record.split(" ", 2)
        pid, since = int(pid_text), float(since_text)
    except (OSError, ValueError):
        return "held by another process (it left no record of who it is)"
    state = _process_state(pid)
    if state is None:
        return f"held by another process (the record names pid {pid}, which has ended)"
    held = max(0.0, time.time() - since)
    stopped = f", stopped: `kill -CONT {pid}` resumes it" if state in ("T", "t") else ""
    return f"held by pid {pid} (`{cmd}`{stopped}) for {held:.0f} s"


class FileGate:
    """Cross-process turn-taking on a store file, and the warm instance (module docstring)."""

    def __init__(self, path: Path) -> None:
        self.lock_path = path.with_name(path.name + ".lock")
        self.wait_path = path.with_name(path.name + ".wait")
        self.local = threading.local()  # per-thread depth: a nested unit reuses the hold
        self.cond = threading.Condition()
        self.holders = 0
        self.fd: int | None = None  # our exclusive flock on <store>.lock, while we hold the file
        self.since = 0.0  # when this hold began
        self.idle_since = 0.0
        self.draining = False
        self.instance: duckdb.DuckDBPyConnection | None = None  # keeps the instance open
        self.watcher: threading.Thread | None = None
        self.linger = 0.0
        self.taking = False  # the helper thread is waiting in the kernel for <store>.lock
        self.wanting = 0  # threads of this process waiting for their turn
        self.take_error: OSError | None = None

    # -- is another process waiting? ------------------------------------------------------
    def others_waiting(self) -> bool:
        try:
            fd = os.open(self.wait_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the probe lock too
        return False

    def _open_lock(self) -> int:
        return os.open(self.lock_path, os.O_RDWR | os.O_CREAT, PRIVATE)

    def _hold(self, fd: int) -> None:
        """This process now holds `<store>.lock`: say so in it (for waiters that give up)."""
        self.fd = fd
        self.since = time.monotonic()
        record = f"{os.getpid()} {time.time():.3f} {_own_command()}\n".encode()
        with suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)

    def _try_take(self) -> bool:
        """Take `<store>.lock` if nobody holds it (no waiting)."""
        fd = self._open_lock()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._hold(fd)
        return True

    def _take_waiting(self) -> None:
        """(helper thread) Announce on `<store>.wait`, sleep in the kernel until
        `<store>.lock` is ours, then give it to the waiting threads, or back at once if they
        all gave up meanwhile."""
        fd: int | None = None
        error: OSError | None = None
        try:
            fd = self._open_lock()
            wait_fd = os.open(self.wait_path, os.O_RDWR | os.O_CREAT, PRIVATE)
            try:
                fcntl.flock(wait_fd, fcntl.LOCK_SH)  # tell the holder we are waiting
                fcntl.flock(fd, fcntl.LOCK_EX)
            finally:
                os.close(wait_fd)
        except OSError as exc:
            if fd is not None:
                os.close(fd)
            fd, error = None, exc
        with self.cond:
            self.taking = False
            self.take_error = error
            if fd is not None:
                self._hold(fd)
                if not self.wanting:
                    self._let_go()
            self.cond.notify_all()

    def _busy(self, waited: float, timeout: float) -> StoreBusyError:
        store = self.lock_path.with_name(self.lock_path.name.removesuffix(".lock"))
        if self.fd is not None:
            who = (f"held by this process (pid {os.getpid()}: other threads' units of work) "
                   f"for {time.monotonic() - self.since:.0f} s")
        else:
            who = describe_holder(self.lock_path)
        LOCK_STATS.record(waited, 0)
        return StoreBusyError(
            f"{store}: {who}; gave up after waiting {waited:.0f} s: retry when it finishes, "
            f"or raise CURATION_LOCK_TIMEOUT (now {timeout:g} s)"
        )

    def _let_go(self) -> None:
        """Close the instance (checkpoint) and unlock. Caller holds `cond`, holders == 0."""
        if self.instance is not None:
            with suppress(duckdb.Error):
                self.instance.close()
            self.instance = None
        if self.fd is not None:
            with suppress(OSError):
                os.ftruncate(self.fd, 0)  # nobody holds it any more
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        handed_over = self.draining
        self.draining = False
        self.cond.notify_all()
        if handed_over:
            # let the process that was woken by the unlock take its turn first
            time.sleep(0.002)

    # -- threads ----------------------------------------------------------------------------
    def acquire(self, timeout: float) -> float:
        """Block until this thread may use the file; return the seconds waited. Past
        `timeout` seconds raise `StoreBusyError` naming the holder."""
        start = time.monotonic()
        depth = getattr(self.local, "depth", 0)
        self.local.depth = depth + 1
        if depth:
            return 0.0
        try:
            with self.cond:
                self.wanting += 1
                try:
                    self._await_turn(start, timeout)
                finally:
                    self.wanting -= 1
                self.holders += 1
        except BaseException:
            self.local.depth = depth
            raise
        return time.monotonic() - start

    def _await_turn(self, start: float, timeout: float) -> None:
        """(holding `cond`) Return once this thread may join the hold."""
        while True:
            if self.fd is None:
                if self.take_error is not None:
                    error, self.take_error = self.take_error, None
                    raise StoreError(f"{self.lock_path}: cannot lock the store: {error}") from error
                if not self.taking and self._try_take():
                    return
                if not self.taking:
                    self.taking = True
                    threading.Thread(target=self._take_waiting, name="curation-store-wait",
                                     daemon=True).start()
            elif self.draining:
                pass  # admitting nobody new: the last one out hands over
            elif time.monotonic() - self.since > SHARE_WINDOW_S and self.others_waiting():
                self.draining = True
                if not self.holders:
                    self._let_go()  # idle and someone waits: hand over, then queue behind
                    continue
            else:
                return
            remaining = start + timeout - time.monotonic()
            if remaining <= 0:
                raise self._busy(time.monotonic() - start, timeout)
            self.cond.wait(min(remaining, 0.5))

    def release(self, linger: float) -> None:
        self.local.depth -= 1
        if self.local.depth:
            return
        with self.cond:
            self.holders -= 1
            if self.holders:
                return
            if self.draining or linger <= 0 or self.instance is None or self.others_waiting():
                self._let_go()
                return
            self.idle_since = time.monotonic()
            self.linger = linger
            if self.watcher is None or not self.watcher.is_alive():
                self.watcher = threading.Thread(target=self._watch, name="curation-store-linger", daemon=True)
                self.watcher.start()

    def _watch(self) -> None:
        """While the process holds the file idle: hand it over when asked or when bored."""
        while True:
            time.sleep(POLL_S)
            with self.cond:
                if self.fd is None:
                    self.watcher = None
                    return
                if self.holders:
                    continue
                if time.monotonic() - self.idle_since > self.linger or self.others_waiting():
                    self._let_go()
                    self.watcher = None
                    return

    def cursor(self, open_instance: Callable[[], duckdb.DuckDBPyConnection]) -> duckdb.DuckDBPyConnection:
        """A new connection on the warm instance (opened on first use by this hold)."""
        with self.cond:
            if self.instance is None:
                self.instance = open_instance()
            return self.instance.cursor()

    def close(self) -> None:
        with self.cond:
            if self.holders == 0 and self.fd is not None:
                self._let_go()
