"""Code on the page, from lab's own source: what a student reads is the code that produced the numbers.

    listing.show(train.step)        # in a page cell: the function's current source as a python code block

renders as a caption naming where the code lives, then the source exactly as `inspect.getsource` returns it
(dedented, for a method):

    **`lab.train.step`** (`lab/train.py`, line 231)

    ```python
    def step(model, batch, device, optimizer, scheduler, scaler, grad_clip, loss_fn=None, idx=None) -> float:
        ...
    ```

Because the block is read from the module when the page executes, it cannot drift from the code the page's
numbers came from; `blocks(markdown)` reads the blocks back out of a frozen page, so a test can hold every
listed block equal to the current source of the function it names (tests/test_listing.py).
"""
from __future__ import annotations

import importlib
import inspect
import re
import textwrap

# The caption line `show` writes, then the fenced block; `blocks` parses exactly this shape back.
_BLOCK = re.compile(r"^\*\*`(?P<name>lab(?:\.\w+)+)`\*\* \(`[^`]+`, line \d+\)\n\n(?P<fence>`{3,})python\n"
                    r"(?P<code>.*?)^(?P=fence)$", re.MULTILINE | re.DOTALL)


def name_of(obj) -> str:
    """'lab.train.step': the dotted name a reader can import, `module.qualname`."""
    return f"{obj.__module__}.{obj.__qualname__}"


def source(obj) -> str:
    """The current source of a lab function or class, as inspect.getsource reads it, dedented (a method is
    indented in its file; a page shows it flush left)."""
    if not getattr(obj, "__module__", "").startswith("lab"):
        raise ValueError(f"{obj!r} is not part of lab (its module is {getattr(obj, '__module__', None)!r}); the "
                         "page shows lab's own code, so pass a function or class from a lab module")
    return textwrap.dedent(inspect.getsource(obj))


def markdown(obj) -> str:
    """The caption and the fenced block for one function (see the module docstring)."""
    code = source(obj)
    # a fence longer than any run of backticks in the code, so a docstring holding ``` cannot close it early
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", code)), default=0))
    rel = obj.__module__.replace(".", "/") + ".py"       # where it lives in the repository (and in the wheel)
    line = inspect.getsourcelines(obj)[1]
    return f"**`{name_of(obj)}`** (`{rel}`, line {line})\n\n{fence}python\n{code}{fence}"


def show(*objs):
    """One or more functions' source, for a page cell's output (Markdown, so Quarto highlights it)."""
    from IPython.display import Markdown
    return Markdown("\n\n".join(markdown(o) for o in objs))


def blocks(page_markdown: str) -> list[tuple[str, str]]:
    """(dotted name, code) of every listing `show` wrote into a page's markdown, in order."""
    return [(m["name"], m["code"]) for m in _BLOCK.finditer(page_markdown)]


def resolve(name: str):
    """The object a dotted name from `blocks` names: 'lab.train.step' -> the function (a class's method too)."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ValueError(f"{name!r} names no importable module; expected 'lab.<module>.<function>'")
