"""Every exercise's own code runs as a student would run it: in a fresh Python process, on the smoke profile, with
the smoke course's records and runs (so `train.finetuned(profile)` reloads what the course trained).

Each exercise's process is forked from one that has only imported the libraries (torch, transformers, peft, lab and
the rest: `PRELOAD`) and run nothing else: it starts with no state of any earlier exercise, as a fresh kernel does,
without paying each time for the 3-7 s of imports (20 exercises: about 100 s of a test run on 2 cores). The one
process that runs them is the module's `fresh_processes` fixture (`Forks`).

An exercise's code is the ```python blocks of its item in a page's Exercises section (and the answer callouts after
it), plus any `{python}` cells there, in page order; the section's preamble, before exercise 1, is set-up that
every exercise gets first. Each block's last expression is printed, as a notebook cell shows it, so a checker left
with its placeholder answer must say "fill in your answer", never crash."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WEEKS = sorted((REPO / "course").glob("0*.qmd"))

BLOCK = re.compile(r"(?ms)^([ >]*)```(?:python|\{python\})[ \t]*\n(.*?)^[ >]*```[ \t]*$")

# exec each block in one namespace; print the last expression's value as a notebook would
RUNNER = r'''
import ast, json, sys
import matplotlib
matplotlib.use("Agg")
ns = {"__name__": "__main__"}
for n, code in enumerate(json.loads(open(sys.argv[1]).read()), 1):
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, f"<block {n}>", "exec"), ns)
    if last is not None:
        value = eval(compile(ast.Expression(last.value), f"<block {n}>", "eval"), ns)
        if value is not None:
            print(f"[block {n}] {value}")
'''


def section(page_source: str) -> str:
    """The page's Exercises section: from its heading to the end of the page."""
    return page_source[page_source.index("## Exercises"):]


def code_blocks(text: str) -> list[str]:
    """The ```python and ```{python} blocks of `text`, dedented, without Quarto's `#|` option lines."""
    out = []
    for prefix, body in BLOCK.findall(text):
        lines = [line[len(prefix):] if line.startswith(prefix) else line.lstrip(" >") for line in body.splitlines()]
        code = textwrap.dedent("\n".join(lines))
        out.append("\n".join(line for line in code.splitlines() if not line.lstrip().startswith("#|")))
    return out


def exercises(page_source: str) -> tuple[list[str], list[str]]:
    """(the preamble's blocks, each numbered exercise's own text with what follows it up to the next one)."""
    sec = section(page_source)
    parts = re.split(r"(?m)^(?=\d+\. )", sec)
    return code_blocks(parts[0]), parts[1:]


def run_exercise(blocks: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    (cwd / "blocks.json").write_text(json.dumps(blocks), encoding="utf-8")
    (cwd / "runner.py").write_text(RUNNER, encoding="utf-8")
    return subprocess.run([sys.executable, "runner.py", "blocks.json"], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=900)


# What the exercises' code imports, imported once in the process their processes are forked from. Importing starts
# no thread pool (torch's OpenMP threads start at the first parallel operation), so a fork after it is safe.
PRELOAD = ("matplotlib.pyplot", "torch", "transformers", "peft", "sklearn.metrics", "onnxruntime",
           "lab", "lab.display.exercises", "lab.recipes.week1", "lab.recipes.week2", "lab.recipes.week3",
           "lab.recipes.week4", "lab.recipes.week5", "lab.recipes.week6")

# Reads one request a line ({"cwd", "stdout", "stderr"}), forks, and runs RUNNER on cwd/blocks.json in the child
# with its output in those files; answers with the child's exit code, a line each. The parent itself only imports,
# so no child inherits a torch thread pool whose threads the fork left behind.
FORKS = r'''
import importlib, json, os, sys
import matplotlib
matplotlib.use("Agg")
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
runner = compile(sys.argv[2], "runner.py", "exec")
print("ready", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.chdir(request["cwd"])
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        sys.argv = ["runner.py", "blocks.json"]
        code = 0
        try:
            exec(runner, {"__name__": "__main__"})
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
'''


class Forks:
    """One process that has imported PRELOAD (with `env` set from its start) and forks a fresh child per exercise."""

    def __init__(self, env: dict):
        self.proc = subprocess.Popen([sys.executable, "-c", FORKS, json.dumps(PRELOAD), RUNNER],
                                     env={**os.environ, **env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        ready = self.proc.stdout.readline().strip()
        assert ready == "ready", f"the process to fork exercises from did not start (it said {ready!r})"

    def run(self, blocks: list[str], cwd: Path) -> subprocess.CompletedProcess:
        (cwd / "blocks.json").write_text(json.dumps(blocks), encoding="utf-8")
        out, err = cwd / "stdout.txt", cwd / "stderr.txt"
        self.proc.stdin.write(json.dumps({"cwd": str(cwd), "stdout": str(out), "stderr": str(err)}) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer.strip(), "the process that forks the exercises died"
        return subprocess.CompletedProcess(["runner.py", "blocks.json"], int(answer), out.read_text(),
                                           err.read_text())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def fresh_processes(smoke_course):
    forks = Forks(smoke_course.env)
    yield forks
    forks.close()


CASES = [(page, n) for page in WEEKS for n in range(1, len(exercises(page.read_text(encoding="utf-8"))[1]) + 1)]


@pytest.mark.parametrize("page,n", CASES, ids=[f"{p.stem}-ex{n}" for p, n in CASES])
def test_every_exercise_runs_on_smoke_from_a_fresh_process(page, n, fresh_processes, tmp_path):
    preamble, items = exercises(page.read_text(encoding="utf-8"))
    own = code_blocks(items[n - 1])
    assert own, f"{page.name}, exercise {n}: no ```python block; every exercise needs the code it starts from"
    done = fresh_processes.run(preamble + own, tmp_path)
    assert done.returncode == 0, (f"{page.name}, exercise {n} failed in a fresh process:\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    # a checker left with the placeholder answer says so; it never says "Not yet" for another reason
    for line in done.stdout.splitlines():
        if "Not yet" in line:
            assert "fill in your answer" in line, f"{page.name}, exercise {n}: {line}"


def test_blocks_are_found_indented_in_list_items_and_in_quarto_cells():
    text = ("## Exercises\n\nSet-up:\n\n```{python}\n#| echo: false\nx = 1\n```\n\n1. One:\n\n   ```python\n"
            "   y = x + 1\n   y\n   ```\n\n2. Two, no code.\n")
    preamble, items = exercises(text)
    assert preamble == ["x = 1"]
    assert [code_blocks(i) for i in items] == [["y = x + 1\ny"], []]


def test_the_runner_prints_last_expressions_and_fails_on_an_error(tmp_path):
    ok = run_exercise(["a = 2", "a * 3"], {}, tmp_path)
    assert ok.returncode == 0 and "[block 2] 6" in ok.stdout
    broken = run_exercise(["undefined_name + 1"], {}, tmp_path)
    assert broken.returncode != 0 and "NameError" in broken.stderr


def test_each_forked_exercise_starts_without_the_state_of_the_one_before(fresh_processes, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = fresh_processes.run(["import torch, lab", "leftover = torch.ones(512, 512) @ torch.ones(512, 512)",
                                 "lab.LEFTOVER = 1", "print('first ran')"], tmp_path / "a")
    assert first.returncode == 0 and "first ran" in first.stdout, first.stderr
    second = fresh_processes.run(["import lab, os", "print(hasattr(lab, 'LEFTOVER'), 'leftover' in globals(), "
                                  "os.getcwd())", "undefined_name"], tmp_path / "b")
    assert f"False False {tmp_path / 'b'}" in second.stdout                  # nothing of the first, its own folder
    assert second.returncode == 1 and "NameError" in second.stderr           # and a failure is its exit code


def test_the_step_count_checker_agrees_with_the_batches_and_with_the_course_run(smoke_course, monkeypatch):
    """Week 1's exercise 1 is honest: the count its checker calls right is the number of batches the training loop
    draws, and the step the course's finished run saved its last checkpoint at."""
    from lab import checkpoint, config, data, models, train
    from lab.display import exercises as checks
    monkeypatch.setenv("LAB_RUNS", str(smoke_course.runs))
    profile = config.get_profile("smoke")
    splits = data.load_splits(profile)
    lengths = data.encode(models.load_tokenizer(profile.model), splits.train, profile.max_length).lengths()
    batches = sum(len(data.batch_order(lengths, profile.batch_size, profile.seed, epoch))
                  for epoch in range(profile.epochs))
    last = checkpoint.latest(train.run_dir(profile))
    assert last is not None, f"the smoke course left no run in {train.run_dir(profile)}"
    assert last.name == f"step-{batches:06d}"
    assert checks.check_steps(batches, examples=len(splits.train), batch_size=profile.batch_size,
                              epochs=profile.epochs)
    assert not checks.check_steps(batches + 1, examples=len(splits.train), batch_size=profile.batch_size,
                                  epochs=profile.epochs)


WIDTH = 88      # characters of code that fit the page's column at 1280 px (tests/test_visible_code.py)


@pytest.mark.parametrize("page", WEEKS, ids=lambda p: p.stem)
def test_exercise_code_fits_the_column_and_compiles(page):
    blocks = code_blocks(section(page.read_text(encoding="utf-8")))
    wide = [line for code in blocks for line in code.splitlines() if len(line) > WIDTH]
    assert not wide, f"{page.name}: exercise code wider than {WIDTH} characters:\n" + "\n".join(wide)
    for code in blocks:
        compile(code, page.name, "exec")
