"""The files and names a user gives: regular files of a bounded size, names the filesystem can hold.

Every file a user names (`--data`, `--test-data`, `--config`, `compress --examples`, a recovery
`--pool`, a pruning `--calibration` file) is checked here before it is opened: a device such as
/dev/zero would be read until memory runs out, and opening a FIFO waits for a writer that never
comes. `os.stat` answers both without opening anything; the read that follows is bounded too, so a
file that grows (or is swapped) after the check cannot get past the limit either.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from damoc.errors import DamocError

# Data files are read whole and parsed into Python records, which take several times the file's
# size in memory. The sets damoc is for (10k-100k examples of a few kB) are tens to hundreds of
# MB; 2 GB leaves room for ten times that, and refuses what would exhaust a workstation before it
# is read. One limit for every data file: --data, --test-data, --examples, --pool, --calibration.
DATA_FILE_LIMIT = 2_000_000_000

# A run file is a page of settings (the shipped ones are under 2 kB): 1 MB is ample.
RUN_FILE_LIMIT = 1_000_000

# What damoc adds to an output's name: the files beside it (`X.jsonl` -> `X.records.jsonl`) and the
# temporary names its atomic writes use (`.X.records.jsonl.abcd1234.tmp`, `.X.12345.old.abcd1234`).
OUTPUT_NAME_ROOM = 32

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _label(path: str | os.PathLike, what: str) -> str:
    return f"{what} {path}" if what else str(path)


def size_text(n: int) -> str:
    for unit, name in ((10**9, "GB"), (10**6, "MB"), (10**3, "kB")):
        if n >= unit:
            return f"{n / unit:.1f}".removesuffix(".0") + f" {name}"
    return f"{n} bytes"


def _limit_name(limit: int) -> str:
    return {DATA_FILE_LIMIT: "data files", RUN_FILE_LIMIT: "run files"}.get(limit, "this input")


def _over(path, what: str, size: int, limit: int) -> DamocError:
    said, cap = size_text(size), size_text(limit)
    if said == cap:  # just over: the rounded sizes read alike
        said = f"{size:,} bytes"
    return DamocError(f"{_label(path, what)}: is {said}, over the {cap} limit for {_limit_name(limit)}")


def name_max(path: str | os.PathLike) -> int:
    """The longest file name (in bytes) the filesystem holding `path` (or its nearest existing
    ancestor) takes; 255 where it cannot say."""
    here = Path(os.path.abspath(path))
    for folder in (here, *here.parents):
        try:
            return os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError):
            continue
    return 255


def _path_max() -> int:
    try:
        return os.pathconf("/", "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        return 4096


def check_names(path: str | os.PathLike, what: str, room: int = 0) -> Path:
    """`path`, or a one-line DamocError naming `what` where one of its names (plus `room` bytes
    damoc adds to the last one) is longer than the filesystem takes."""
    path = Path(path)
    limit = name_max(path)
    parts = [p for p in path.parts if p not in ("/", "")]
    for i, part in enumerate(parts):
        extra = room if i == len(parts) - 1 else 0
        n = len(os.fsencode(part))
        if n + extra > limit:
            room_text = f", less {extra} for the names damoc gives the files it writes beside it" if extra else ""
            raise DamocError(f"{_label(path, what)}: a name in it is too long ({n} bytes; this filesystem takes "
                             f"at most {limit}{room_text}); choose a shorter one")
    if len(os.fsencode(str(path))) + room >= _path_max():
        raise DamocError(f"{_label(path, what)}: the path is too long for this filesystem; choose a shorter one")
    return path


def check_output_names(path: str | os.PathLike, what: str = "--out") -> Path:
    """An output's path: names short enough for it and for the files damoc writes beside it."""
    return check_names(path, what, OUTPUT_NAME_ROOM)


def check_input_file(path: str | os.PathLike, what: str, limit_bytes: int) -> Path:
    """`path` if it is a regular file (a link to one counts) of at most `limit_bytes`, else a
    one-line DamocError naming `what` (the setting, e.g. "--data"; "" for none). Opens nothing."""
    path = Path(path)
    check_names(path, what)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DamocError(f"{_label(path, what)}: no such file") from None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise DamocError(f"{_label(path, what)}: the path is too long for this filesystem") from None
        raise DamocError(f"{_label(path, what)}: cannot read it ({e.strerror or e})") from None
    return _check_stat(path, what, st, limit_bytes)


def _check_stat(path: Path, what: str, st: os.stat_result, limit: int) -> Path:
    if stat.S_ISDIR(st.st_mode):
        raise DamocError(f"{_label(path, what)}: is a folder; give a file")
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
        raise DamocError(f"{_label(path, what)}: not a regular file ({kind})")
    if st.st_size > limit:
        raise _over(path, what, st.st_size, limit)
    return path


def read_input_bytes(path: str | os.PathLike, what: str, limit_bytes: int) -> bytes:
    """The bytes of a checked input file, read with a bound: never more than `limit_bytes` + 1,
    never waiting on a FIFO (opened non-blocking, then checked again on the open descriptor)."""
    path = check_input_file(path, what, limit_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise DamocError(f"{_label(path, what)}: cannot read it ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        _check_stat(path, what, st, limit_bytes)  # the file opened is the one checked
        data = f.read(st.st_size + 1)  # read(n) allocates n bytes at once: the size it says, not the limit
        if len(data) > st.st_size:  # it grew since, or says a wrong size (/proc): on, in steps, to the limit
            grown = bytearray(data)
            while len(grown) <= limit_bytes and (chunk := f.read(min(1 << 20, limit_bytes + 1 - len(grown)))):
                grown += chunk
            data = bytes(grown)
    if len(data) > limit_bytes:  # it grew after the check, or says a wrong size (/proc)
        raise _over(path, what, len(data), limit_bytes)
    return data
