"""Files damoc writes, and the rules that keep a user's own files safe.

- Writes are atomic (write, fsync, rename): a crash or Ctrl-C leaves the old file or the new.
- damoc never deletes or overwrites what it did not write. Folders it makes carry a marker
  (`.damoc-run.json`, saying which command made them); a model folder or a data file is only
  replaced with `--overwrite`, only when damoc made it, and never `.` or a parent of it.
- Cached files are read through a check: a damaged one is moved aside (`NAME.corrupt`), said
  in one line, and recomputed, instead of trapping every later run in the same traceback.
- A run folder has one writer at a time (`.lock` holds its PID; a dead owner's lock is taken over).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from damoc.errors import DamocError

MARKER = ".damoc-run.json"
LOCK = ".lock"
# Records that damoc wrote into its output folders before the marker existed.
_LEGACY_RECORDS = ("damoc-prune.json", "damoc-finetune.json", "damoc-model.json")


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


def write_json_atomic(path: str | Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def jsonl_text(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


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
    return (folder / MARKER).is_file() or any((folder / r).is_file() for r in _LEGACY_RECORDS)


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
    existing = [p for p in [target, *(target.with_suffix(s) for s in companions)] if p.exists()]
    if existing:
        if not overwrite:
            raise DamocError(f"{existing[0]} already exists; choose another --out or pass --overwrite")
        summary = target.with_suffix(".summary.json")
        if not summary.is_file():
            raise DamocError(f"{target} has no {summary.name} beside it, so damoc did not make it; "
                             "refusing to overwrite it")
    check_writable(target.parent)
    return target


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
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DamocError(f"--out {out} is a file; give a folder for the run, e.g. runs/NAME")
    marker = out / MARKER
    if out.is_dir() and not marker.exists() and any(out.iterdir()):
        if not _legacy_run(out):
            raise DamocError(f"--out {out} holds files damoc did not write; give a new or empty folder")
    if marker.exists():
        made = read_json_checked(marker, lambda d: isinstance(d, dict))
        made_by = (made or {}).get("made_by", f"damoc {command}")
        if made_by != f"damoc {command}":
            raise DamocError(f"--out {out} is a `{made_by}` run folder; give another folder for `damoc {command}`")
    check_writable(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not marker.exists():
            write_json_atomic(marker, _marker(command))
    except OSError as e:
        raise DamocError(f"cannot write to --out {out}: {e.strerror or e}") from None
    return out


def _legacy_run(out: Path) -> bool:
    """A run folder written before markers existed: resume it rather than refuse it."""
    return ((out / "results.json").is_file() or (out / "candidates").is_dir()
            or (out / "data" / "summary.json").is_file() or (out / "summary.json").is_file())


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
    created is removed again if the run stops before writing anything (bad input leaves no trace)."""
    out = Path(out)
    new = not out.exists()
    out = claim_run_dir(out, command)
    try:
        with run_lock(out):
            yield out
    except BaseException:
        if new and {p.name for p in out.iterdir()} <= {MARKER, LOCK}:
            (out / MARKER).unlink(missing_ok=True)
            (out / LOCK).unlink(missing_ok=True)
            out.rmdir()
        raise


@contextmanager
def run_lock(out: str | Path) -> Iterator[None]:
    """One writer per run folder: a second run into it stops with a message; a lock left by a
    process that died (kill -9) is taken over. Readers never take the lock."""
    path = Path(out) / LOCK
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner == os.getpid():  # re-entered in this process
                yield
                return
            if owner and pid_alive(owner):
                raise DamocError(f"another damoc run (PID {owner}) is writing to {out}; wait for it to "
                                 f"finish, or stop it (a lock left by a dead process is taken over)") from None
            path.unlink(missing_ok=True)  # stale: its owner is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    else:
        raise DamocError(f"cannot take the lock {path}")
    try:
        yield
    finally:
        try:
            if int(path.read_text().strip() or 0) == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass
