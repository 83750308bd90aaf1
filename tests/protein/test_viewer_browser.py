"""The 3D viewer in a real headless Chromium, on a real PDB entry (HIV-1 protease, Debian's pymol-data)."""

import dataclasses
import io
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from browser import file_url, open_browser, page_problems
from featvis.protein.report import AttentionParams, compute_protein, render_protein
from featvis.protein.table import read_table

PDB = Path("/usr/share/pymol/data/tut/1hpv.pdb")  # .ci/run installs pymol-data
HIV_PR = "PQITLWQRPLVTIKIGGQLKEALLDTGADDTVLEEMSLPGRWKPKMIGGIGGFIKVRQYDQILIEICGHKAIGTVLVGPTPVNIIGRNLLTQIGCTLNF"


@pytest.fixture(scope="module")
def report(tiny_esm, tmp_path_factory):
    assert PDB.is_file(), "apt-get install -y pymol-data"
    root = tmp_path_factory.mktemp("viewer")
    table = root / "t.tsv"
    table.write_text(f"id\tsequence\tvariants\tpdb\tdomains\nhiv\t{HIV_PR}\tD25N\t{PDB}:A\tflap:43-58\n")
    (entry,) = read_table(table)
    params = AttentionParams(scan="wildtype", logo_window=2)
    arrays, scores = compute_protein(tiny_esm, entry, params)
    render_protein(entry, arrays, scores, params, root / "report", "random:esm2_t6_8M_UR50D", "note")
    return root / "report"


def test_viewer_draws_offline(report):
    page = report / "D25N_structure.html"
    assert (report / "3Dmol-min.js").stat().st_size > 100_000  # the library travels with the report
    with open_browser() as driver:
        driver.get(file_url(page))
        deadline = time.monotonic() + 30
        while not driver.execute_script("return window.featvisViewerReady === true") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert driver.execute_script("return window.featvisViewerReady === true"), "the viewer never finished"
        time.sleep(1.0)  # let the WebGL frame reach the screen
        shot = mpimg.imread(io.BytesIO(driver.find_element("id", "view").screenshot_as_png), format="png")
        (report / "viewer_screenshot.png").write_bytes(driver.find_element("id", "view").screenshot_as_png)
        rgb = shot[..., :3]
        drawn = (rgb < 0.95).any(-1).mean()
        colours = len(np.unique((rgb * 255).astype(np.uint8).reshape(-1, 3), axis=0))
        assert drawn > 0.05 and colours > 50, (drawn, colours)  # a cartoon, not a blank canvas
        # The colour menu offers the scan's sensitivity and the domain toggle works.
        options = driver.execute_script("return Array.from(document.getElementById('track').options).map(o => o.value)")
        assert "sensitivity" in options
        driver.find_element("id", "domains").click()
        assert "flap" in driver.find_element("id", "legend").text
        assert page_problems(driver) == []  # no console errors, nothing fetched beyond file://
    text = page.read_text()
    assert "identity 100.0%" in text and "https://" not in text


def test_report_page_loads_cleanly(report):
    with open_browser() as driver:
        driver.get(file_url(report / "index.html"))
        assert page_problems(driver) == []
        anchors = driver.execute_script("return Array.from(document.querySelectorAll('nav.toc a')).map(a => a.hash)")
        assert {"#scan", "#agreement", "#glossary", "#variant-D25N"} <= set(anchors)
        assert "randomly initialised" in driver.find_element("class name", "warning").text
        styled = driver.execute_script("return getComputedStyle(document.querySelector('nav.toc')).backgroundColor")
        assert styled == "rgb(246, 246, 246)"  # the local stylesheet applied


def test_reports_are_byte_identical_across_renders(tiny_esm, report, tmp_path):
    (entry,) = read_table(next(report.parent.glob("*.tsv")))
    entry = dataclasses.replace(entry)
    params = AttentionParams(scan="wildtype", logo_window=2)
    arrays, scores = compute_protein(tiny_esm, entry, params)
    render_protein(entry, arrays, scores, params, tmp_path / "again", "random:esm2_t6_8M_UR50D", "note")
    for name in ("D25N.pdf", "D25N_structure.html", "index.html", "structure_D25N.pdb", "D25N_snapshot.png"):
        assert (tmp_path / "again" / name).read_bytes() == (report / name).read_bytes(), name
    pdf = (report / "D25N.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") == 1
    assert b"/CreationDate" not in pdf  # fixed metadata: a clinic file does not change on a rerun
