"""One value per latency on the frozen site: each (variant, runtime, batch, hardware) latency is measured once, in the
latency/variants record, and every latency that pages 4, 5 and 6 show is that record's, written the one way
lab.bench.ms writes it.

This reads the committed freezes and records, so it passes only once the records are re-measured and the pages
re-frozen with the code that has one latency record; `problems` takes any root, so a smoke render in a temp root
can be checked the same way (see the README's render command).
"""
import json
import re
from pathlib import Path
from lab.display import latency as speeds



ROOT = Path(__file__).resolve().parents[1]
PAGES = ("04-quantization", "05-distillation", "06-verification")       # the pages that show latencies
SHOWN = re.compile(r"\d[\d.]* \(\d[\d.]*–\d[\d.]*\)")                   # '12.3 (11.9–13.0)': lab.bench.ms


def _has_key(obj, key: str) -> bool:
    if isinstance(obj, dict):
        return key in obj or any(_has_key(v, key) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_key(v, key) for v in obj)
    return False


def problems(root: Path, records: Path) -> list[str]:
    """Every way the frozen site under `root` breaks "one value per latency", given the records folder."""
    found = []
    latency_files = sorted((records / "latency" / "variants").glob("*.json"))
    if not latency_files:
        return [f"no latency/variants record under {records}"]
    shown_by_record = set()
    for path in latency_files:
        rows = json.loads(path.read_text())["result"]["rows"]
        keys = [(r["variant"], r["batch"]) for r in rows]
        found += [f"{path.name}: {k} measured {keys.count(k)} times" for k in sorted(set(keys)) if keys.count(k) > 1]
        shown_by_record |= {speeds.ms(r) for r in rows}
    for path in sorted(records.rglob("*.json")):
        name = path.parent.relative_to(records).as_posix()
        if not name.startswith("latency/") and _has_key(json.loads(path.read_text())["result"], "median_ms"):
            found.append(f"record {name}/{path.name} holds latencies of its own: a second value for the same quantity")
    for page in PAGES:
        freeze = root / "_freeze" / "course" / page / "execute-results" / "html.json"
        if not freeze.exists():
            found.append(f"{page}: no freeze at {freeze}")
            continue
        shown = SHOWN.findall(json.loads(freeze.read_text())["result"]["markdown"])
        if not shown:
            found.append(f"{page}: shows no latency in lab.bench.ms's form")
        found += [f"{page} shows {text!r}, which is no latency of the latency/variants record"
                  for text in sorted(set(shown) - shown_by_record)]
    return found


def test_each_latency_appears_with_one_value_on_the_frozen_site():
    assert problems(ROOT, ROOT / "course" / "measurements") == []


def test_a_page_showing_a_latency_the_record_does_not_hold_is_caught(tmp_path):
    # the control: the same check on a made-up site where week 5 shows a value of its own
    row = {"variant": "full/pytorch-fp32", "batch": 1, "median_ms": 11.6, "p10_ms": 11.0, "p90_ms": 13.4}
    (tmp_path / "rec" / "latency" / "variants").mkdir(parents=True)
    (tmp_path / "rec" / "latency" / "variants" / "cpu-x.json").write_text(json.dumps({"result": {"rows": [row]}}))
    for page, text in zip(PAGES, ("11.6 (11–13.4)", "16.1 (15.2–17.0)", "11.6 (11–13.4)")):
        folder = tmp_path / "_freeze" / "course" / page / "execute-results"
        folder.mkdir(parents=True)
        (folder / "html.json").write_text(json.dumps({"result": {"markdown": f"| teacher | {text} |"}}))
    assert problems(tmp_path, tmp_path / "rec") == [
        "05-distillation shows '16.1 (15.2–17.0)', which is no latency of the latency/variants record"]
