"""ECBS5200 course lab: fine-tune, checkpoint, LoRA, quantize and measure one transformer classifier.

Import the module you need (`from lab import data, train`); this file stays light so `import lab` is instant.
"""
from lab.config import get_profile, PROFILES          # noqa: F401
from lab.measure import measured                      # noqa: F401

__version__ = "0.1.0"
