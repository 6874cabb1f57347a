"""What week 2 shows: full fine-tune against LoRA, the three checks, and the trap with its fix.

    week2.comparison_rows(full_record, lora_result); week2.check_rows([...]); week2.trap_rows(trap_result)
"""
from __future__ import annotations

import re


def comparison_rows(full: dict, adapter: dict) -> list[dict]:
    """Week 1's full fine-tune against week 2's LoRA: accuracy, what trains, how long, what you hand in."""
    def row(name, rec, trainable, mb):
        h = rec["history"]
        return {"": name, "test accuracy": f'{rec["test"]["accuracy"]:.3f}',
                "test macro-F1": f'{rec["test"]["macro_f1"]:.3f}', "trainable parameters": f"{trainable:,}",
                "share trained": f"{100 * trainable / h['n_params']:.2f}%",
                "training time (s)": f'{h["clock"]["train_s"]:.0f}', "samples/s": f'{h["samples_per_s"]:.1f}',
                "hand-in (MB)": f"{mb:.2f}"}
    full_rec = full["result"]
    return [row("full fine-tune (week 1)", full_rec, full_rec["history"]["n_params"], adapter["size_mb"]["full"]),
            row(f"LoRA r={adapter['settings']['r']}", adapter, adapter["params"]["trainable"],
                adapter["size_mb"]["adapter"])]


def check_rows(checks: list[dict]) -> list[dict]:
    return [{"check": c["check"], "result": "pass" if c["pass"] else "FAIL",
             "max |difference|": c.get("max_abs_diff", ""),
             "logits SHA-256 (here / reloaded)": (f"{c['logits_sha256'][:12]}… / {c['reloaded_sha256'][:12]}…"
                                                  if "logits_sha256" in c else "")} for c in checks]


def trap_message(check: dict):
    """lab.lora.trap_check's message for a page, its fix (`modules_to_save=['pooler']`) as code. As plain text the
    fix's quotes would reach the site's Markdown as prose, which typesets them as curly quotes: copied into
    Python, `[‘pooler’]` is a syntax error."""
    from IPython.display import Markdown
    return Markdown(re.sub(r"(modules_to_save=\[[^\]]*\])", r"`\1`", check["message"]))


def trap_rows(trap: dict) -> list[dict]:
    # `modules_to_save` is peft's argument: a name, shown as code
    return [{"`modules_to_save`": ", ".join(r["modules_to_save"]),
             "random at load, not saved": ", ".join(r["trap"]["unsaved"]) or "none", "trap check": "pass" if r["trap"]["pass"] else "FAIL",
             "reload on another seed": "bit-identical" if r["reload"]["pass"] else "different logits",
             "max |difference|": r["reload"]["max_abs_diff"]} for r in trap["rows"]]
