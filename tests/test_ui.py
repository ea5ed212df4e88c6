"""The user's path in MLflow's own UI, in a real browser: a sweep, a real ``mlflow server`` on its store,
Debian's Chromium driven by Playwright.  ``make test-ui`` installs both and runs this; it also writes the
README's screenshots (``docs/figures/mlflow_*.png``), so they show what this test saw."""

import contextlib
import re
import shutil
from pathlib import Path

import pytest

from conftest import run_cli, store_uri
from servers import serve_mlflow

pytestmark = pytest.mark.ui
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]  # a closed network: no background connections


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A 4-job sweep with its report (tracking.report=auto) and the links its closing lines print."""
    cwd = tmp_path_factory.mktemp("sweep")
    done = run_cli(cwd, "-m", "architecture.depth=2,8", "activation=sigmoid,relu", "trainer.epochs=100")
    assert done.returncode == 0, done.stderr
    links = dict(re.findall(r"^  (the sweep's runs|its report's figure|gradient profiles):\s+(\S+)$", done.stdout, re.M))
    assert len(links) == 3, done.stdout
    return cwd, links


@pytest.fixture(scope="module")
def chromium():
    """Debian's chromium driven by Playwright's sync API, one for the module (a second ``sync_playwright``
    while one runs fails: 'using Playwright Sync API inside the asyncio loop'); the test is skipped where
    either is missing."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium (make test-ui installs Debian's)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@contextlib.contextmanager
def browser_on(chromium, store: str, server_root: Path):
    """A page of ``chromium`` (1440 x 900) and a real ``mlflow server`` on ``store`` (``page.server`` is its
    address)."""
    with serve_mlflow(server_root, store) as url:
        page = chromium.new_page(viewport={"width": 1440, "height": 900})
        page.server = url
        yield page
        page.close()


@pytest.fixture(scope="module")
def page(sweep, chromium, tmp_path_factory):
    with browser_on(chromium, store_uri(sweep[0]), tmp_path_factory.mktemp("server")) as page:
        yield page


def visit(page, link: str) -> None:
    """Open a printed link (it names MLflow's default port) on the test's server; close the Assistant panel."""
    page.goto(link.replace("http://127.0.0.1:5000", page.server))
    close = page.get_by_role("button", name="Close", exact=True).first
    try:
        close.wait_for(timeout=15000)  # MLflow 3.17 opens its Assistant over a third of the page
    except Exception:  # a later MLflow without it
        return
    try:
        close.click(timeout=5000)
    except Exception:  # on the GenAI overview, the "Detect Issues" pop-up may come first and take the click
        page.get_by_role("button", name="Got it").first.click(timeout=10000)
        close.click()


def in_model_training(page) -> bool:
    """Whether MLflow shows its Model training view (its side bar lists Runs, not the GenAI view's
    Evaluation runs), as the printed links ask with ``?workflowType=machine_learning``."""
    page.get_by_role("link", name="Runs", exact=True).first.wait_for(timeout=30000)
    return page.get_by_text("Evaluation runs", exact=True).count() == 0


def model_training_chosen(chromium, server: str, bare: str):
    """A fresh browser profile (Playwright's context: its own local storage) in which the user opened the
    experiment from MLflow's list (``bare``) and clicked "Model training" once, as the README says; returns
    ``(context, page)``."""
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.server = server
    visit(page, bare)
    with contextlib.suppress(Exception):  # a later MLflow without the "Detect Issues" pop-up
        page.get_by_role("button", name="Got it").first.click(timeout=10000)
    assert "/runs" not in page.url  # the GenAI overview
    page.get_by_text("Model training", exact=True).first.click()
    page.get_by_role("link", name=re.compile(r"^sweep \[")).first.wait_for(timeout=30000)
    assert "/runs" in page.url and "workflowType=machine_learning" in page.url
    return context, page


def test_a_click_on_model_training_is_remembered_by_the_browser(page, sweep, chromium):
    """What the README tells a user who opens the experiment from MLflow's own list: it lands on the GenAI
    overview (MLflow 3.17, whatever the experiment's tags; a pop-up over it until "Got it"); one click on
    "Model training" shows the runs table with the sweep's parent.  MLflow keeps the choice in the browser's
    local storage: a new tab of the same browser opens the bare address on the runs table at once, while a
    fresh browser profile lands on the GenAI overview again (hence the printed links, which name the view)."""
    bare = sweep[1]["the sweep's runs"].split("/runs?")[0]  # as MLflow's list of experiments links it
    context, _ = model_training_chosen(chromium, page.server, bare)
    try:
        tab = context.new_page()
        tab.goto(bare.replace("http://127.0.0.1:5000", page.server))
        tab.get_by_role("link", name=re.compile(r"^sweep \[")).first.wait_for(timeout=30000)
        assert "/runs" in tab.url and in_model_training(tab)
    finally:
        context.close()
    fresh = chromium.new_page(viewport={"width": 1440, "height": 900})  # a context of its own
    fresh.server = page.server
    try:
        visit(fresh, bare)
        fresh.get_by_text("Evaluation runs", exact=True).first.wait_for(timeout=30000)  # the GenAI side bar
        assert "/runs" not in fresh.url
    finally:
        fresh.close()


def test_a_bare_experiment_address_with_the_model_training_query_shows_the_runs(page, sweep):
    """``#/experiments/<id>?workflowType=machine_learning`` (what the click on "Model training" adds) opens
    the runs table at once, in a new tab too: the query the printed links carry."""
    bare = sweep[1]["the sweep's runs"].replace("/runs?", "?")
    assert bare.endswith("?workflowType=machine_learning") and "/runs" not in bare
    visit(page, bare)
    page.get_by_role("link", name=re.compile(r"^sweep \[")).first.wait_for(timeout=30000)
    assert "/runs" in page.url and in_model_training(page)


def test_the_printed_runs_link_opens_the_runs_table_with_the_sweeps_parent(page, sweep):
    visit(page, sweep[1]["the sweep's runs"])
    parent = page.get_by_role("link", name=re.compile(r"^sweep \["))
    parent.first.wait_for(timeout=30000)
    assert "/runs" in page.url and in_model_training(page)
    page.screenshot(path=str(FIGURES / "mlflow_runs_table.png"))


def sweep_figure_shown(page) -> None:
    """Click the sweep's row (1): its page shows the gradient-profile figure in its description, in full
    after "Show more" (2)."""
    page.get_by_role("link", name=re.compile(r"^sweep \[")).first.click()
    page.get_by_text("Show more").first.click()
    figure = page.locator("img[src*='report%2Fgrad_profile.png']")
    figure.wait_for(timeout=30000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=figure.element_handle())
    assert figure.evaluate("img => img.naturalWidth") > 500


def test_the_answer_is_two_clicks_from_the_printed_runs_link(page, sweep):
    """In a fresh browser the row's link drops the printed link's query: the run page comes in MLflow's
    GenAI view (its side bar), the figure on it all the same."""
    visit(page, sweep[1]["the sweep's runs"])
    sweep_figure_shown(page)
    page.get_by_text("Evaluation runs", exact=True).first.wait_for(timeout=30000)  # as docs/mlflow.md says


def test_the_answer_is_two_clicks_from_the_runs_table_in_model_training(page, sweep, chromium):
    """Once "Model training" is chosen (the README's one click), the run page keeps that view: what the
    README's screenshot shows."""
    bare = sweep[1]["the sweep's runs"].split("/runs?")[0]
    context, tab = model_training_chosen(chromium, page.server, bare)
    try:
        sweep_figure_shown(tab)
        assert in_model_training(tab)
        tab.screenshot(path=str(FIGURES / "mlflow_sweep_answer.png"), full_page=True)
    finally:
        context.close()


def test_the_printed_report_link_shows_the_profile_figure(page, sweep):
    visit(page, sweep[1]["its report's figure"])
    page.get_by_text("report/grad_profile.png").first.wait_for(timeout=30000)
    page.wait_for_function("Array.from(document.images).some(i => i.complete && i.naturalWidth > 500)",
                           timeout=30000)  # the artifact view draws the figure (from a blob URL)
    assert in_model_training(page)
    page.screenshot(path=str(FIGURES / "mlflow_report_figure.png"))


def test_the_chart_view_shows_the_reports_figures_as_the_parent_runs_images(page, sweep):
    """The sweep's figures are image records of its parent run: the runs link's chart view (its second
    button, "Chart view") draws a card of each, from the thumbnail made beside the figure."""
    visit(page, sweep[1]["the sweep's runs"].replace("/runs?", "/runs?compareRunsMode=CHART&"))
    card = page.locator("img[src*='grad_profile%2Bstep%2B0']")
    for _ in range(20):  # the image cards sit below the metric charts: scrolled to, they load
        if card.count():
            break
        page.mouse.move(900, 600)
        page.mouse.wheel(0, 800)
        page.wait_for_timeout(500)
    card.first.wait_for(timeout=30000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=card.first.element_handle())
    assert "compressed.webp" in card.first.get_attribute("src")
    assert max(card.first.evaluate("img => [img.naturalWidth, img.naturalHeight]")) == 256
    assert in_model_training(page)


def test_the_printed_chart_link_draws_every_run_on_the_log10_profile(page, sweep):
    visit(page, sweep[1]["gradient profiles"])
    page.get_by_text("profile/log10_grad_norm_init").first.wait_for(timeout=30000)
    for name in ("depth=2,activation=sigmoid", "depth=8,activation=relu"):
        page.get_by_text(name).first.wait_for(timeout=30000)  # each run, by the name of what varies
    assert "Completed Runs" in page.content() and "4/4" in page.content()
    page.screenshot(path=str(FIGURES / "mlflow_log10_profile.png"))


def test_the_runs_table_of_a_thousand_job_sweep_loads_in_the_browser(tmp_path, chromium):
    """The experiment page of a real 1000-job sweep (the grid of ``tests/test_scale.py``, two updates a
    job: ~4 minutes here): the runs table shows the sweep's parent row (its jobs folded under it) and its
    first page of runs.  The time it takes is printed, not judged (a shared machine's timings are not a
    test's verdict): docs/scale.md states it."""
    import time

    from mlflow.tracking import MlflowClient

    from conftest import thousand_job_grid
    from runner.tracking.links import runs_url

    done = run_cli(tmp_path, "-m", *thousand_job_grid(epochs=2, log_every=1), "tracking.experiment=thousand",
                   "tracking.report=never", timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    experiment = MlflowClient(store_uri(tmp_path)).get_experiment_by_name("thousand").experiment_id
    with browser_on(chromium, store_uri(tmp_path), tmp_path / "server") as page:
        runs = runs_url(experiment, page.server)  # as the sweep prints it
        started = time.perf_counter()  # a first visit: the server just started, the browser never saw it
        page.goto(runs)
        page.get_by_role("link", name=re.compile(r"^sweep \[")).first.wait_for(timeout=60000)
        page.get_by_text(re.compile(r"\d+ matching runs")).wait_for(timeout=60000)
        first = time.perf_counter() - started
        visit(page, runs)  # MLflow's Assistant closed, caches warm
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            page.goto(runs)
            page.reload()
            page.get_by_role("link", name=re.compile(r"^sweep \[")).first.wait_for(timeout=60000)
            page.get_by_text(re.compile(r"\d+ matching runs")).wait_for(timeout=60000)  # its first page
            timings.append(time.perf_counter() - started)
        print(f"the runs table of 1000 runs loaded in {first:.1f} s on a first visit, then in "
              f"{', '.join(f'{t:.1f}' for t in timings)} s")
        page.screenshot(path=str(tmp_path / "thousand_runs.png"))
