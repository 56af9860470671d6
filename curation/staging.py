"""Files and folders that appear whole or not at all, and path checks that explain themselves.

`write_text_atomic(path, text)` writes a file under a hidden temporary name beside it and
renames it into place; `staged_folder(target, kind)` yields a hidden folder beside `target`
to fill, renamed to `target` when the block succeeds and removed when it fails. Both name
their temporary with the writing process's id (`.{name}.{kind}-{pid}-{hex}`), so a later
writer removes the leftovers of a killed one (`clean_stale`: only those whose process is
gone) and never those of a writer still running. Modes follow the umask (0644 files, 0755
folders under the usual 022), as for any other file the user writes.

Path problems (`check_new_file`, `check_new_folder`) become `InputError`s naming the path
and the option, raised before any work is done.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from curation.errors import InputError

PART = "part"  # the kind of a temporary file


def _temp_name(name: str, kind: str) -> str:
    return f".{name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return True  # cannot tell: keep the folder
    return True


def clean_stale(parent: Path, kind: str, name: str | None = None) -> list[Path]:
    """Remove `.{name}.{kind}-{pid}-{hex}` entries in `parent` (any name when None) whose
    process no longer runs; return what was removed. Unreadable folders are left alone."""
    pattern = re.compile(rf"^\.(?P<name>.+)\.{re.escape(kind)}-(?P<pid>\d+)-[0-9a-f]+$")
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = pattern.match(p.name)
        if not m or (name is not None and m["name"] != name) or pid_alive(int(m["pid"])):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError:
            continue
        removed.append(p)
    return removed


def _describe(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_parent(path: Path, option: str, *, must_exist: bool = True) -> None:
    """The folder that will hold `path` is a folder: it exists, or (with `must_exist=False`)
    its nearest existing ancestor is a folder, so that it can be made. Nothing is created."""
    parent = path.parent
    for p in (parent, *parent.parents):
        if p.is_dir():
            break
        if p.exists() or p.is_symlink():
            raise InputError(f"{p} is a file, not a folder; choose another {option}", location=str(path))
    if must_exist and not parent.is_dir():
        raise InputError(f"the folder {parent} does not exist; create it first or choose another {option}",
                         location=str(path))


def make_parent(path: Path) -> None:
    """Create the folders above `path` (an OSError becomes an `InputError` naming `path`)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder {path.parent}: {_describe(exc)}", location=str(path)) from None


def check_new_file(path: str | os.PathLike[str], option: str, *, create_parent: bool = False) -> Path:
    """`path` may be written as a file: it is not a folder and its folder exists (or, with
    `create_parent`, can be made). Nothing is created."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"is a folder; {option} takes a file name", location=str(p))
    check_parent(p, option, must_exist=not create_parent)
    return p


def check_new_folder(path: str | os.PathLike[str], option: str, *, what: str = "folder",
                     hint: str | None = None) -> Path:
    """`path` does not exist yet and its parent is, or can be made, a folder. `hint`: what
    to do when it exists (default: choose a new `option`). Nothing is created."""
    p = Path(path).expanduser()
    if p.exists() or p.is_symlink():
        kind = "a folder" if p.is_dir() else "a file"
        raise InputError(
            f"already exists ({kind}); a {what} is written once: {hint or f'choose a new {option}'}",
            location=str(p),
        )
    check_parent(p, option, must_exist=False)
    return p


def write_text_atomic(path: str | os.PathLike[str], text: str, *, option: str = "--out",
                      create_parent: bool = False) -> Path:
    """Write `text` to `path` (UTF-8): a hidden temporary beside it, then a rename. On any
    failure the temporary is removed and an OSError becomes an `InputError` naming `path`."""
    p = check_new_file(path, option, create_parent=create_parent)
    make_parent(p)
    clean_stale(p.parent, PART, p.name)
    tmp = p.with_name(_temp_name(p.name, PART))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode: the umask decides
        with open(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, p)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise InputError(f"cannot write: {_describe(exc)}", location=str(p)) from None
        raise
    return p


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike[str], kind: str, *, option: str = "--out",
                  what: str = "folder", hint: str | None = None) -> Iterator[Path]:
    """Yield an empty hidden folder beside `target`; rename it to `target` when the block
    succeeds, remove it when the block fails. `target` must not exist (checked first, and
    again at the rename). Stale folders of killed writers of this `kind` are removed."""
    final = check_new_folder(target, option, what=what, hint=hint)
    make_parent(final)
    clean_stale(final.parent, kind)
    tmp = final.with_name(_temp_name(final.name, kind))
    try:
        tmp.mkdir()  # mode 0777 & ~umask, unlike mkdtemp's 0700
    except OSError as exc:
        raise InputError(f"cannot create a folder in {final.parent}: {_describe(exc)}", location=str(final)) from None
    try:
        yield tmp
        if final.exists() or final.is_symlink():
            raise InputError(f"appeared while this {what} was being written; nothing was replaced",
                             location=str(final))
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, hex."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
