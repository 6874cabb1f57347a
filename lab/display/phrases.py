"""Every comparison the pages put in words: one function per kind, each covering every case, so that a sentence
built from measurements reads as English whatever the measurements say.

    phrases.speed(ref, mine)                  # '1.8x as fast', '1.3x slower', 'not distinguishable here', 'not measured'
    phrases.speed_at(refs, mines)             # '1.8x as fast at batch 1 and not distinguishable at batch 32'
    phrases.accuracy(a, b)                    # '5.0 points higher (64 of 1,276 snippets)', 'not distinguishable here'

A speed is a latency row (median_ms, p10_ms, p90_ms); a ratio is said only where the two p10-p90 ranges are apart
(lab.bench.distinguishable). An accuracy is a variant row (accuracy, and "correct": '0'/'1' per test snippet); a
difference is said only where McNemar's paired test finds one (lab.capstone.accuracy_test). Each phrase completes
"<the subject>, against <the reference>: ..." or stands after a colon or in parentheses; none needs a verb around it.
"""
from __future__ import annotations

from lab import bench, capstone

TIE = "not distinguishable here"        # inside the noise: no ratio, no difference, whatever its value
MISSING = "not measured"
BUSY = "measured on a busy machine"     # a noisy record (lab.record.records_used.noisy): a lead, not a result
UNTESTED = "no per-snippet predictions in the record to test"


def _where(batch: int | None) -> str:
    return "" if batch is None else f" at batch {batch}"


def speed(ref: dict | None, mine: dict | None, *, batch: int | None = None, noisy: bool = False,
          digits: int = 2) -> str:
    """How fast `mine` is against `ref`, two latency rows: '1.8x as fast' (ref's median over mine's), '1.3x slower',
    TIE when the ranges overlap ('not distinguishable here', or '... at batch 32' with `batch`), MISSING when a
    row is absent. noisy: the record was taken on a busy machine, and the phrase says so."""
    if ref is None or mine is None:
        text = MISSING + _where(batch)
    elif not bench.distinguishable(ref, mine):
        text = TIE if batch is None else f"not distinguishable{_where(batch)}"
    elif mine["median_ms"] <= ref["median_ms"]:
        text = f"{ref['median_ms'] / mine['median_ms']:.{digits}g}x as fast{_where(batch)}"
    else:
        text = f"{mine['median_ms'] / ref['median_ms']:.{digits}g}x slower{_where(batch)}"
    return f"{text} ({BUSY})" if noisy else text


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def speed_at(refs: dict[int, dict], mines: dict[int, dict], batches=None, *, noisy: bool = False,
             digits: int = 2) -> str:
    """speed() at each batch size, as one clause: '1.8x as fast at batch 1 and not distinguishable at batch 32';
    the same tie at every batch says so once ('not distinguishable at batches 1 and 32'). refs and mines:
    {batch: latency row}; batches: which (default: every batch either has). noisy: said once, at the end."""
    batches = sorted(batches if batches is not None else set(refs) | set(mines))
    if not batches:
        return MISSING + (f" ({BUSY})" if noisy else "")
    ties = [b for b in batches if refs.get(b) and mines.get(b) and not bench.distinguishable(refs[b], mines[b])]
    if len(batches) > 1 and ties == batches:
        text = f"not distinguishable at batches {_join([str(b) for b in batches])}"
    else:
        text = _join([speed(refs.get(b), mines.get(b), batch=b, digits=digits) for b in batches])
    return f"{text} ({BUSY})" if noisy else text


def accuracy(a: dict | None, b: dict | None, digits: int = 1) -> str:
    """a's accuracy against b's, two variant rows on the same test snippets: '5.0 points higher (64 of 1,276
    snippets)' or '... lower ...' where McNemar's test tells them apart (lab.capstone.accuracy_test), TIE where it
    does not, TIE with the reason where a row has no per-snippet predictions to test (the rule then counts the two
    as tied), MISSING where a row or its accuracy is absent."""
    if a is None or b is None or a.get("accuracy") is None or b.get("accuracy") is None:
        return MISSING
    t = capstone.accuracy_test(a, b)
    if not t["tested"]:
        return f"{TIE} ({UNTESTED})"
    if not t["distinguishable"]:
        return TIE
    net = abs(t["a_only"] - t["b_only"])
    return (f"{abs(t['points']):.{digits}f} points {'higher' if t['points'] > 0 else 'lower'} "
            f"({net:,} of {t['n']:,} snippets)")
