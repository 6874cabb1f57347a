"""ECBS5200 course lab: fine-tune, checkpoint, LoRA, quantize and measure one transformer classifier.

Import the module you need (`from lab import data, train`); this file stays light so `import lab` is instant.
"""
import warnings

# tqdm.auto (which transformers and huggingface_hub import) warns in any kernel without ipywidgets that it falls
# back to a text bar. That is harmless, and a page would publish it with the executing machine's path in it.
warnings.filterwarnings("ignore", message="IProgress not found")

from lab.config import get_profile, PROFILES          # noqa: E402,F401
from lab.measure import measured                      # noqa: E402,F401

__version__ = "0.1.0"
