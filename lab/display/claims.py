"""Prose claims asserted against measurements.

A page that says "int8 is not faster on the GPU" also says `expect(gpu_int8_speedup < 1, "int8 is not faster on
the GPU", speedup=gpu_int8_speedup)`. When a re-measurement breaks the claim, the site render stops here, naming
the page, the claim and the numbers, instead of publishing prose that the numbers no longer support.

In a student's notebook (no site render) the same call never stops the notebook: a student's machine differs from
the course's, and a different number is the lesson. It prints the course's numbers next to the student's
(lab.display.student) and returns False.
"""
from __future__ import annotations

import os

from lab.display import student
from lab.config import UNPUBLISHABLE


class ClaimError(AssertionError):
    pass


# A site render sets one of these for the page's kernel:
# - LAB_PAGE: lab.site's executor (lab/site/execute.py);
# - QUARTO_DOCUMENT_PATH, QUARTO_PROJECT_ROOT: Quarto >= 1.5 sets both for its execution engines (quarto-cli
#   news/changelog-1.5.md, #8388: "add QUARTO_PROJECT_ROOT and QUARTO_DOCUMENT_PATH to the environment when
#   invoking execution engines"), so also under Quarto 1.10;
# - QUARTO_FIG_FORMAT: set for every Jupyter kernel by Quarto's src/resources/jupyter/notebook.py (set_env_vars),
#   which lab.site.execute copies (QUARTO_ENV).
# Jupyter, Kaggle, Colab and VS Code set none of them.
SITE_RENDER_ENV = ("LAB_PAGE", "QUARTO_DOCUMENT_PATH", "QUARTO_PROJECT_ROOT", "QUARTO_FIG_FORMAT")
# Enforced under the smoke profile too: LAB_ENFORCE_CLAIM=all, or the text of one claim (a test that breaks that
# claim on purpose, while smoke's other claims, whose magnitudes mean nothing, still only warn).
STRICT_ENV = "LAB_ENFORCE_CLAIM"


def in_site_render() -> bool:
    return any(os.environ.get(name) for name in SITE_RENDER_ENV)


def current_page() -> str:
    # lab.site sets LAB_PAGE for the kernel; under real Quarto we fall back to the working directory (the page's).
    return os.environ.get("LAB_PAGE") or os.environ.get("QUARTO_DOCUMENT_PATH") or os.getcwd()


def expect(condition: bool, claim: str, **numbers) -> bool:
    """In a site render, stop with ClaimError unless `condition` holds; `numbers` are shown in the message (and
    recorded, so that the page's notebook can show them next to a student's). In a student notebook, print the
    course's numbers next to this run's and go on. Returns whether the claim held.

    Under the smoke profile (tiny random-init models, for CI) magnitudes mean nothing, so in a site render a broken
    claim is printed as a warning instead: the smoke run checks that the page *executes*, the real profiles check
    the prose.
    """
    site = in_site_render()
    if site:
        student.remember(claim, numbers)
    if condition:
        return True
    if not site:
        student.show_claim(claim, numbers)
        return False
    shown = ", ".join(f"{k}={v!r}" for k, v in numbers.items()) or "no numbers given"
    message = (f"page {current_page()}: the claim {claim!r} does not hold for the measured numbers ({shown}). "
               f"Fix the prose or the code, then re-render.")
    # smoke, and the rehearsals' random-init models; STRICT_ENV enforces a claim there all the same (tests)
    if os.environ.get("LAB_PROFILE") in UNPUBLISHABLE and os.environ.get(STRICT_ENV) not in ("all", claim):
        import warnings
        warnings.warn(f"{os.environ['LAB_PROFILE']} profile, not enforced: " + message, stacklevel=2)
        return False
    raise ClaimError(message)
