"""Prose claims asserted against measurements.

A page that says "int8 is not faster on the GPU" also says `expect(gpu_int8_speedup < 1, "int8 is not faster on
the GPU", speedup=gpu_int8_speedup)`. When a re-measurement breaks the claim, the render stops here, naming the
page, the claim and the numbers, instead of publishing prose that the numbers no longer support.
"""
from __future__ import annotations

import os

from lab.config import UNPUBLISHABLE


class ClaimError(AssertionError):
    pass


def current_page() -> str:
    # lab.site sets LAB_PAGE for the kernel; under real Quarto we fall back to the working directory (the page's).
    return os.environ.get("LAB_PAGE") or os.environ.get("QUARTO_DOCUMENT_PATH") or os.getcwd()


def expect(condition: bool, claim: str, **numbers) -> bool:
    """Stop the render with ClaimError unless `condition` holds. `numbers` are shown in the message.

    Under the smoke profile (tiny random-init models, for CI) magnitudes mean nothing, so a broken claim is
    printed as a warning instead: the smoke run checks that the page *executes*, the real profiles check the prose.
    """
    if condition:
        return True
    shown = ", ".join(f"{k}={v!r}" for k, v in numbers.items()) or "no numbers given"
    message = (f"page {current_page()}: the claim {claim!r} does not hold for the measured numbers ({shown}). "
               f"Fix the prose or the code, then re-render.")
    if os.environ.get("LAB_PROFILE") in UNPUBLISHABLE:      # smoke, and the rehearsals' random-init models
        import warnings
        warnings.warn(f"{os.environ['LAB_PROFILE']} profile, not enforced: " + message, stacklevel=2)
        return False
    raise ClaimError(message)
