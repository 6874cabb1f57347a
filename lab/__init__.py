"""ECBS5200 course lab: fine-tune, checkpoint, LoRA, quantize and measure one transformer classifier.

Import the module you need (`from lab import data, train`); this file stays light so `import lab` is instant.
"""
import os
import warnings

# tqdm.auto (which transformers and huggingface_hub import) warns in any kernel without ipywidgets that it falls
# back to a text bar. That is harmless, and a page would publish it with the executing machine's path in it.
warnings.filterwarnings("ignore", message="IProgress not found")
# peft 0.21 asks transformers 5 a question under its old name (`is_gradient_checkpointing`) on every LoRA wrap:
# a deprecation between the two libraries, nothing a student did or can fix.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

# onnxruntime's official builds send telemetry (the 1DS SDK: DNS lookups of mobile.events.data.microsoft.com a
# few seconds after `import onnxruntime`, and a device-id database in ~/.cache/Microsoft). This course runs offline
# on students' machines, so it is off unless the user set ORT_DISABLE_TELEMETRY themselves. It must be set before
# onnxruntime initializes, hence here, before any lab module can import it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from lab.config import get_profile, PROFILES          # noqa: E402,F401
from lab.record.store import measured                      # noqa: E402,F401

__version__ = "0.1.0"
