"""Progress reaches the person waiting and never the frozen page."""
import io
import json

from lab.record.progress import relay
from lab.site import render_pages


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_finished_lines_and_at_most_one_bar_state_per_interval(tmp_path):
    out = io.StringIO()                                   # a CI log: not a terminal
    feed = relay(tmp_path / "p.txt", out=out, log_every_s=3600)._feed
    for chunk in ("\r  0%| 0/4", "\r 25%| 1/4", "\r 50%| 2/4", "\r100%| 4/4\n", "[lab] done\n"):
        feed(chunk)
    assert out.getvalue() == "0%| 0/4\n100%| 4/4\n[lab] done\n"


def test_a_terminal_gets_the_bar_as_written_so_it_redraws_in_place(tmp_path):
    out = _Terminal()
    feed = relay(tmp_path / "p.txt", out=out)._feed
    feed("\r 25%| 1/4")
    feed("\r 50%| 2/4")
    assert out.getvalue() == "\r 25%| 1/4\r 50%| 2/4"


def test_training_progress_is_relayed_to_the_terminal_and_kept_out_of_the_freeze(tmp_path, capfd):
    page = tmp_path / "p.qmd"
    page.write_text('---\ntitle: "P"\njupyter: python3\n---\n\n```{python}\nfrom lab.record import progress\n'
                    'with progress.bar(3, unit="step") as bar:\n    for _ in range(3):\n'
                    '        bar.update(1); bar.set_postfix(loss="0.123")\nprogress.note("[lab] noted")\n```\n')
    render_pages([page], tmp_path)
    md = json.loads((tmp_path / "_freeze/p/execute-results/html.json").read_text())["result"]["markdown"]
    terminal = capfd.readouterr().err
    assert "loss=0.123" in terminal and "p.qmd: [lab] noted" in terminal
    assert "loss=0.123" not in md and "3/3" not in md
    assert "[lab] noted" in md          # a note is also the cell's own output, as in a notebook
