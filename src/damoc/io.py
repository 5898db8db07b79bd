"""Files damoc writes, and the rules that keep a user's own files safe.

- Writes are atomic (write, fsync, rename): a crash or Ctrl-C leaves the old file or the new.
- damoc never deletes or overwrites what it did not write. Folders it makes carry a marker
  (`.damoc-run.json`, saying which command made them); a model folder or a data file is only
  replaced with `--overwrite`, only when damoc made it, and never `.` or a parent of it.
- Cached files are read through a check: a damaged one is moved aside (`NAME.corrupt`), said
  in one line, and recomputed, instead of trapping every later run in the same traceback.
- A run folder has one writer at a time: an advisory lock (flock) on `.lock`, which the kernel drops
  when its process dies (kill -9 included), so there is no stale lock to judge and no PID to trust.
- damoc writes only into real folders: a symbolic link inside a run folder is refused, never followed.
- JSON is strict: NaN and infinity are written as null, which every JSON reader accepts.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from damoc.compat import model_folder_before_marker, run_before_marker
from damoc.errors import DamocError

MARKER = ".damoc-run.json"
LOCK = ".lock"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results should read like any other file
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def finite_json(data: Any) -> Any:
    """`data` with every NaN or infinite float replaced by None: Python's json writes them as bare
    `NaN`/`Infinity`, which is not JSON and which other tools (jq, JavaScript, pandas) reject."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite_json(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_json(v) for v in data]
    return data


def json_text(data: Any, indent: int | None = 2) -> str:
    """Strict JSON (non-finite floats as null)."""
    return json.dumps(finite_json(data), indent=indent, allow_nan=False)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    return write_text_atomic(path, json_text(data) + "\n")


def jsonl_text(rows) -> str:
    return "".join(json_text(r, indent=None) + "\n" for r in rows)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def outputs_record(*paths: str | Path) -> dict[str, str]:
    """The SHA-256 of each file damoc just wrote, by name, for the summary written beside them:
    `--overwrite` replaces a file only while it still has the content damoc gave it."""
    return {Path(p).name: file_sha256(p) for p in paths}


def write_jsonl_atomic(path: str | Path, rows) -> Path:
    return write_text_atomic(path, jsonl_text(rows))


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path: str | Path) -> list:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------- damaged caches


def warn(message: str) -> None:
    print(f"damoc: warning: {message}", file=sys.stderr)


def quarantine(path: str | Path, why: str) -> None:
    """Move a damaged cache file aside (kept for a post-mortem, never read again) and say so."""
    path = Path(path)
    dest = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, dest)
    except OSError:
        return
    warn(f"{path} was damaged ({why}); moved to {dest.name}, it will be recomputed")


def write_cache(path: str | Path, write: Callable[[], object]) -> None:
    """Run `write` (which writes the cache file `path`); a cache saves time and holds no result, so
    one that cannot be written (a full disk, a read-only or impossible $DAMOC_HOME) is said in one
    line and the run goes on without it."""
    try:
        write()
    except OSError as e:
        warn(f"cannot write the cache {path} ({e.strerror or e}); going on without it (set DAMOC_HOME to a "
             "writable folder to keep caches)")


def read_checked(path: str | Path, reader: Callable[[Path], Any],
                 valid: Callable[[Any], bool] = lambda _: True) -> Any | None:
    """`reader(path)` if the file exists and reads back as something `valid`; otherwise None, and
    a file that exists but does not read back is quarantined."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = reader(path)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, EOFError) as e:
        quarantine(path, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}")
        return None
    if not valid(data):
        quarantine(path, "unexpected content")
        return None
    return data


def read_json_checked(path: str | Path, valid: Callable[[Any], bool] = lambda _: True) -> Any | None:
    return read_checked(path, read_json, valid)


# ---------------------------------------------------------------- output locations


def _inside_cwd_chain(path: Path) -> bool:
    """True for the current directory and every folder above it."""
    here, target = Path.cwd().resolve(), path.resolve()
    return target == here or target in here.parents


def _made_by_damoc(folder: Path) -> bool:
    return (folder / MARKER).is_file() or model_folder_before_marker(folder)


def check_writable(path: Path) -> None:
    """Fail now, in one line, if nothing can be written where `path` would go (before any work)."""
    folder = path
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise DamocError(f"cannot write {path}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".damoc-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DamocError(f"cannot write {path}: {e.strerror or e} ({folder})") from None


def check_output_folder(target: str | Path, overwrite: bool) -> Path:
    """A model output folder (prune, finetune): new, or replaceable because damoc made it and
    the user asked (--overwrite). Never `.` or a folder above it."""
    target = Path(target)
    if target.exists() or target.is_symlink():
        if _inside_cwd_chain(target):
            raise DamocError(f"--out {target} is the current folder or one above it; give a new folder")
        if not target.is_dir():
            raise DamocError(f"--out {target} is a file; give a folder name")
        if not overwrite:
            raise DamocError(f"--out {target} already exists; choose a new folder, or pass --overwrite to "
                             "replace a folder damoc made")
        if not _made_by_damoc(target):
            raise DamocError(f"--out {target} was not made by damoc (no {MARKER}); refusing to replace it")
    check_writable(target.parent)
    return target


def check_output_file(target: str | Path, overwrite: bool, companions: tuple[str, ...] = ()) -> Path:
    """A data output file (filter, compress) and the files written beside it (suffixes that
    replace the target's): new, or replaced with --overwrite when its summary shows damoc made it."""
    target = Path(target)
    if target.is_dir():
        raise DamocError(f"--out {target} is a folder; give a file name such as {target / 'subset.jsonl'}")
    summary = target.with_suffix(".summary.json")
    existing = [p for p in [target, *(target.with_suffix(s) for s in companions)]
                if p.exists() or p.is_symlink()]
    if existing:
        if not overwrite:
            raise DamocError(f"{existing[0]} already exists; choose another --out or pass --overwrite")
        made = _read_record(summary)
        for p in existing:
            if p == summary:
                continue
            if p.is_symlink() or not p.is_file() or made.get(p.name) != file_sha256(p):
                raise DamocError(f"{p} is not a file damoc wrote (its {summary.name} has no record of this "
                                 "content); refusing to overwrite it")
        if summary in existing and (summary.is_symlink() or not made):
            raise DamocError(f"{summary} is not a summary damoc wrote; refusing to overwrite it")
    check_writable(target.parent)
    return target


def _read_record(summary: Path) -> dict[str, str]:
    """The output hashes a damoc summary recorded (`outputs_record`); empty when there is none."""
    if summary.is_symlink() or not summary.is_file():
        return {}
    try:
        outputs = read_json(summary).get("outputs")
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):
        return {}
    return {k: v for k, v in outputs.items() if isinstance(v, str)} if isinstance(outputs, dict) else {}


@contextmanager
def atomic_dir(target: str | Path, command: str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a scratch folder beside target; on success it becomes target in one rename, with the
    marker inside. An existing target is replaced only under `check_output_folder`'s rules."""
    target = Path(target)
    check_output_folder(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", dir=target.parent))
    try:
        yield work
        write_json_atomic(work / MARKER, _marker(command))
        if target.exists():
            check_output_folder(target, overwrite)  # it may have appeared while we worked
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.old.", dir=target.parent))
            os.replace(target, old / "previous")
            os.replace(work, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _marker(command: str) -> dict:
    return {"made_by": f"damoc {command}", "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def claim_run_dir(out: str | Path, command: str) -> Path:
    """A run folder (select, baseline, recover) that resumes: new, empty, or one this command
    made before (marker present). A non-empty folder without the marker holds someone's files."""
    return _claim(Path(out), command)[0]


def _claim(out: Path, command: str) -> tuple[Path, bool]:
    """`claim_run_dir`, and whether this call created the folder. A new folder appears in one
    rename with its marker inside, so a run starting at the same moment never sees it half-made."""
    from damoc.inputs import check_output_names

    check_output_names(out)
    if out.is_symlink() and not out.is_dir():
        raise DamocError(f"--out {out} is a link to nothing; give a folder for the run")
    if out.exists() and not out.is_dir():
        raise DamocError(f"--out {out} is a file; give a folder for the run, e.g. runs/NAME")
    check_writable(out)
    created = False
    if not out.exists():
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", dir=out.parent))
            os.chmod(work, 0o777 & ~_umask())  # mkdtemp makes 0700; a run folder reads like any other
            write_json_atomic(work / MARKER, _marker(command))
            try:
                os.rename(work, out)  # fails if another run made `out` meanwhile: then claim theirs
                created = True
            except OSError as e:
                shutil.rmtree(work, ignore_errors=True)
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        except OSError as e:
            raise DamocError(f"cannot write to --out {out}: {e.strerror or e}") from None
    marker = out / MARKER
    if not marker.exists() and any(p.name != LOCK for p in out.iterdir()) and not run_before_marker(out):
        raise DamocError(f"--out {out} holds files damoc did not write; give a new or empty folder")
    if marker.exists():
        made = read_json_checked(marker, lambda d: isinstance(d, dict))
        made_by = (made or {}).get("made_by", f"damoc {command}")
        if made_by != f"damoc {command}":
            raise DamocError(f"--out {out} is a `{made_by}` run folder; give another folder for `damoc {command}`")
    refuse_links(out)
    try:
        if not marker.exists():
            write_json_atomic(marker, _marker(command))
    except OSError as e:
        raise DamocError(f"cannot write to --out {out}: {e.strerror or e}") from None
    return out, created


def refuse_links(folder: Path) -> None:
    """damoc never writes through a symbolic link inside a run folder (`OUT/data -> elsewhere`
    would let a run overwrite or rename files it did not write): name the first one and stop."""
    for root, dirs, files in os.walk(folder):  # does not follow links
        for name in dirs + files:
            path = Path(root) / name
            if path.is_symlink():
                raise DamocError(f"{path} is a symbolic link (to {os.readlink(path)}); damoc writes only into "
                                 "real files and folders inside a run folder: remove the link or give a new --out")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def run_folder(out: str | Path, command: str) -> Iterator[Path]:
    """Claim (`claim_run_dir`) and lock a run folder for the duration of a run. A folder this call
    created is removed again if the run stops before writing anything (bad input leaves no trace);
    a run refused by the lock touches nothing."""
    out, created = _claim(Path(out), command)
    with run_lock(out):
        try:
            yield out
        except BaseException:
            if created and {p.name for p in out.iterdir()} <= {MARKER, LOCK}:
                (out / MARKER).unlink(missing_ok=True)
                (out / LOCK).unlink(missing_ok=True)
                out.rmdir()
            raise


_HELD: dict[str, int] = {}  # lock files this process holds, with how many times it entered each


@contextmanager
def run_lock(out: str | Path) -> Iterator[None]:
    """One writer per run folder: an exclusive flock on OUT/.lock. The kernel releases it when the
    holder exits or dies, so a second run is refused exactly while the first is alive; the file
    holds the holder's PID, for the message only. Readers never take the lock."""
    import fcntl

    path = Path(out) / LOCK
    key = str(path.resolve())
    if key in _HELD:  # re-entered in this process
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    if path.is_symlink():
        raise DamocError(f"{path} is a symbolic link; damoc does not write through links")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            who = f" (PID {owner})" if owner.isdigit() else ""
            raise DamocError(f"another damoc run{who} is writing to {out}; wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
            os.ftruncate(fd, 0)  # still held: cleared before release, so no later reader sees our PID
    finally:
        os.close(fd)
