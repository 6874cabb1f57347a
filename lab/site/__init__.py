"""The course site's page executor: runs `.qmd` pages through a Jupyter kernel and writes the
`_freeze/` entries Quarto publishes unchanged (the Quarto CLI is not available where pages are
executed). Modules, one idea each:

- qmd.py       parse a page into cells the way Quarto's jupyter engine does
- execute.py   run those cells in a fresh kernel (nbclient), PageError on failure
- markdown.py  executed cells -> Quarto's frozen markdown + figure files
- freeze.py    html.json + figure-html/ written atomically into _freeze/
- render.py    render_pages: the above, page by page (render_every_page: on past a failing one)
- check.py     check_site: are the frozen entries fresh? check_published: do they read cleanly?
- notebooks.py write_notebooks: clean student notebooks (Kaggle) from the pages
- preview.py   screenshots of the frozen pages at 1280 and 390 px without Quarto (pandoc + Chromium)
"""
from .check import check_published, check_site
from .execute import PageError
from .notebooks import write_notebooks
from .render import Rendered, render_every_page, render_pages

__all__ = ["render_pages", "render_every_page", "Rendered", "check_site", "check_published", "write_notebooks",
           "PageError"]
