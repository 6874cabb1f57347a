"""The code fingerprint of a record: the source of every module that can change its numbers, and nothing else.

    code_of(week1.finetune)   # {"modules": ["lab.checkpoint", ..., "lab.recipes.week1", "lab.train"],
                              #  "fingerprint": "<sha256>", "hashes": {"lab.train": "<12 hex>", ...}}

The rule is the package layout (DESIGN.md): a record's fingerprint covers its recipe (`lab.recipes.*`) and the ML
library it reaches through imports (`lab.*` top-level modules), transitively. It never covers the record machinery
(`lab.record`), display (`lab.display`), the site (`lab.site`) or the command line (`lab.__main__`): editing a
plot, a sentence or the lock makes no record stale, and a stale GPU record can only be re-measured on a GPU.

The import walk reads every `import` in a file, lazy ones inside functions too, in all three spellings:
`import lab.x`, `from lab.pkg import mod` (a module, not only its package) and relative imports (`from . import x`).
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
from pathlib import Path
from typing import Callable

# Never part of a fingerprint: they keep, show or publish numbers but cannot change one.
NOT_MEASURING = ("lab.record", "lab.display", "lab.site", "lab.__main__")


def measuring(name: str) -> bool:
    """True for a module whose source can change a measured number: lab's library and recipes."""
    return name.startswith("lab.") and not any(name == p or name.startswith(p + ".") for p in NOT_MEASURING)


def module_file(name: str) -> Path | None:
    """The source file of an importable module, or None (a name that is an attribute, not a module)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def _package_of(module: str, path: Path) -> str:
    """The package a relative import in `module` starts from: itself for a package's __init__, else its parent."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def lab_imports(module: str, path: Path) -> set[str]:
    """The lab modules a source file imports: `import lab.x`, `from lab import x`, `from lab.pkg import mod` (the
    module lab.pkg.mod where there is one, else lab.pkg) and relative imports, resolved against `module`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lab.")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:      # from . import x / from .mod import y: relative to this module's package
                parts = _package_of(module, path).split(".")
                anchor = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            if base != "lab" and not base.startswith("lab."):
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                if module_file(sub) is not None:
                    found.add(sub)          # a module: `from lab.recipes import week1`
                elif base != "lab":
                    found.add(base)         # a name inside a module: `from lab.train import evaluate`
    return found


def code_modules(root_module: str) -> list[str]:
    """root_module and every measuring lab module it reaches through imports (see `measuring`)."""
    seen, todo = set(), [root_module]
    while todo:
        name = todo.pop()
        if name in seen or (name != root_module and not measuring(name)):
            continue
        path = module_file(name)
        if path is None:
            continue
        seen.add(name)
        todo += sorted(lab_imports(name, path) - seen)
    return sorted(seen)


def module_hashes(modules: list[str]) -> dict[str, str]:
    """SHA-256 of each module's source (first 12 hex digits), so a stale record can say which module changed."""
    out = {}
    for name in sorted(modules):
        path = module_file(name)
        out[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path else "<missing>"
    return out


def fingerprint(modules: list[str]) -> str:
    h = hashlib.sha256()
    for name in sorted(modules):
        path = module_file(name)
        h.update(name.encode() + b"\0" + (path.read_bytes() if path else b"<missing>") + b"\0")
    return h.hexdigest()


def code_of(fn: Callable) -> dict:
    """What produced a record: the measuring lab modules behind `fn`, or, for a function defined in a notebook or
    script (`__main__`, not importable later), the hash of its own source."""
    module = fn.__module__ or "__main__"
    if module != "__main__" and module_file(module) is not None:
        modules = code_modules(module) if module.startswith("lab") else [module]
        return {"modules": modules, "fingerprint": fingerprint(modules), "hashes": module_hashes(modules)}
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = fn.__qualname__
    return {"modules": [], "fingerprint": hashlib.sha256(source.encode()).hexdigest()}
