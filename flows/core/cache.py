"""A small on-disk cache for work that is the same from run to run: compiled report templates and
drawn chart PNGs.

Compiling the report templates (parse, the template-limits AST transform, Python code generation and
``compile``) was most of ``exec-reports check``'s own work, and drawing charts with matplotlib most of
a run's rendering; both give the same result for the same input. An entry's key is a SHA-256 over
everything its result depends on, so a changed template, theme, chart, sandbox (flows/templating/sandbox.py),
library version or Python version is a different key: a miss, never a stale hit.

Safety:
- Writes are atomic (a temporary file in the same folder, then ``os.replace``), so a crash leaves
  either the old entry, the new entry or nothing, never half a file.
- Every entry carries a SHA-256 of its payload; an entry that does not match (a truncated or
  tampered file) is a miss and is rewritten.
- Any error reading or writing the cache (read-only file system, no home directory, full disk) is
  a miss: the cache can make a run faster, never make it fail.
- Entries unused for 30 days are removed when a process first writes to the cache, so it holds what
  recent runs used, not every version ever compiled or drawn.
- Compiled templates are Python code objects (like ``__pycache__``): whoever can write to the cache
  folder can change what runs, so it is created private to the user (0700).

Where: ``$EXEC_REPORTS_CACHE_DIR`` if set (``off`` disables the cache), else ``$PREFECT_HOME/cache``
when PREFECT_HOME is set (``make`` sets it to the project's ``.prefect/``, ignored by git), else
``~/.cache/exec-reports``. Clear it by deleting that folder; nothing else refers to it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

CACHE_ENV = "EXEC_REPORTS_CACHE_DIR"
# Entries nobody read or wrote for this long are removed (the first write of a process of each kind
# looks): the cache holds this month's templates and charts, not every version ever drawn.
MAX_AGE_SECONDS = 30 * 24 * 3600
_TOUCH_AFTER_SECONDS = 24 * 3600
_pruned: set[tuple[str, str]] = set()
_DISABLED = {"", "0", "off", "false", "no", "none"}
_MAGIC = b"exec-reports-cache-1\n"
_DIGEST_SIZE = 32


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is turned off."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return None if configured.strip().lower() in _DISABLED else Path(configured).expanduser()
    prefect_home = os.environ.get("PREFECT_HOME")
    if prefect_home:
        return Path(prefect_home).expanduser() / "cache"
    return Path.home() / ".cache" / "exec-reports"


def cache_key(*parts: str | bytes) -> str:
    """A key over several parts; each is length-prefixed so ("ab", "c") and ("a", "bc") differ."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def read(kind: str, key: str) -> bytes | None:
    """The payload stored under ``kind``/``key``, or None (missing, damaged, caching off)."""
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / kind / key
    try:
        data = path.read_bytes()
        if time.time() - path.stat().st_mtime > _TOUCH_AFTER_SECONDS:
            os.utime(path)  # still in use: not pruned
    except (OSError, ValueError):
        return None
    header = len(_MAGIC) + _DIGEST_SIZE
    if len(data) < header or not data.startswith(_MAGIC):
        return None
    payload = data[header:]
    if hashlib.sha256(payload).digest() != data[len(_MAGIC):header]:
        return None
    return payload


def write(kind: str, key: str, payload: bytes) -> bool:
    """Store ``payload`` atomically; False (and nothing changed) if the cache cannot be written."""
    folder = cache_dir()
    if folder is None:
        return False
    target = folder / kind
    temporary = None
    try:
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile("wb", dir=target, prefix=".tmp-", delete=False) as handle:
            temporary = handle.name
            handle.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
        os.replace(temporary, target / key)
    except OSError:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass
        return False
    if (str(target), kind) not in _pruned:
        _pruned.add((str(target), kind))
        prune(target)
    return True


def prune(folder: Path, max_age: float = MAX_AGE_SECONDS) -> int:
    """Remove entries (and temporary files a crash left) older than ``max_age`` seconds; how many."""
    removed = 0
    cutoff = time.time() - max_age
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


def source_fingerprint(*modules: object) -> str:
    """A hash of the source files of ``modules``: code generated or drawn by them is only reused while
    their source is byte-for-byte the same."""
    digest = hashlib.sha256()
    for module in modules:
        path = getattr(module, "__file__", None)
        try:
            digest.update(Path(path).read_bytes() if path else repr(module).encode())
        except OSError:
            digest.update(os.urandom(16))  # unreadable source: never reuse anything
    return digest.hexdigest()
