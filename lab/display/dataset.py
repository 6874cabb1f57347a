"""The course's data set, described from the file itself: where it comes from, how big it is, its label balance.

    lab.display.dataset.facts()   # {"file": ..., "raw": {"fresh": n, "rotten": n, "plot": n}, "kept": n, ...}

Every count is read from the packaged file at render time (lab.data), so the index's description cannot drift
from the data the weeks train on.
"""
from __future__ import annotations

from functools import lru_cache

from lab import config, data


@lru_cache(maxsize=1)
def facts() -> dict:
    """Counts of the packaged Rotten Tomatoes file: per raw category, after lab.data's cleaning, the share of
    'fresh' (the majority baseline's accuracy), and the fixed split's sizes for the cpu and gpu profiles."""
    import pandas as pd
    raw = pd.read_csv(data.packaged_path())
    counts = {k: int(v) for k, v in raw["category"].value_counts().items()}
    clean = data.load_rotten_tomatoes("packaged")
    full = data.split(clean, seed=config.PROFILES["gpu"].split_seed)
    return {"file": data.PACKAGED_FILE, "install": data.INSTALL_HINT, "raw": counts,
            "reviews": counts.get("fresh", 0) + counts.get("rotten", 0), "kept": len(clean),
            "fresh_share": float(clean["label"].mean()), "films": int(raw["movie_name"].nunique()),
            "splits": {name: {part: n for part, n in data.load_splits(config.PROFILES[name]).sizes().items()}
                       for name in ("cpu", "gpu")},
            "full_split": full.sizes()}
