"""Uploads in Chromium: a CSV becomes the data set, weights become the baseline, a bad file gets a message."""
import io
import re

import numpy as np
import torch
from playwright.sync_api import expect

from compress_core import get_baseline

from .conftest import assert_no_exception, metric_value, open_page, screenshot, wait_for_app


def _csv(path, n=90, f=5, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, f)) + y[:, None]
    head = ",".join([f"f{i}" for i in range(f)] + ["kind"])
    path.write_text(head + "\n" + "\n".join(",".join(map(str, [*r.round(3), f"k{c}"])) for r, c in zip(x, y)))
    return path


PAGES = [("Pruning", "pruning"), ("Lottery tickets", "lottery"), ("Quantization", "quantization"),
         ("Integer inference", "integer"), ("Deep compression", "deep_compression"), ("Compare recipes", "compare")]


def _uploader(page, label):
    return page.get_by_test_id("stFileUploader").filter(has_text=label).locator("input[type=file]")


def test_upload_a_csv_then_weights_then_a_bad_file(server_url, page, tmp_path):
    open_page(page, server_url + "/?dataset=moons&model=tiny&home_view=The+data")  # the home page's data tab
    page.get_by_text("Your own data and weights").click()
    _uploader(page, "Data set (CSV or NPZ)").set_input_files(str(_csv(tmp_path / "mine.csv")))
    wait_for_app(page)
    expect(page.get_by_text("choose the label column")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Use this data set").click()
    wait_for_app(page)
    expect(page.get_by_text("Now using your data set mine.csv: 90 rows, 3 classes")).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("stPlotlyChart").filter(has_text="training rows of each class")).to_be_visible()
    screenshot(page, "upload_csv")
    # every page, in the same session (a new URL would start a new session, without the upload)
    for title, shot in PAGES:
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
        wait_for_app(page, timeout=120_000)
        expect(page).to_have_url(re.compile(r"dataset=upload-[0-9a-f]{8}-mine"))  # still the uploaded data set
        expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible(timeout=120_000)
        screenshot(page, f"upload_{shot}")

    # weights for moons·tiny, trained with another seed: they become the baseline
    page.goto(server_url + "/?dataset=moons&model=tiny")
    wait_for_app(page)
    page.get_by_text("Your own data and weights").click()
    buf = io.BytesIO()
    torch.save(get_baseline("moons", "tiny", seed=1).final_state, buf)
    (tmp_path / "tiny.pt").write_bytes(buf.getvalue())
    _uploader(page, "Weights for the selected model").set_input_files(str(tmp_path / "tiny.pt"))
    wait_for_app(page)
    expect(page.get_by_text("now the baseline of tiny")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("your uploaded weights")).to_be_visible()
    assert metric_value(page, "Test accuracy").inner_text().endswith("%")

    # a file that is not weights: a plain message, and the page goes on
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    _uploader(page, "Weights for the selected model").set_input_files(str(tmp_path / "junk.pt"))
    wait_for_app(page)
    expect(page.get_by_text("not a readable PyTorch weights file")).to_be_visible(timeout=30_000)
    assert_no_exception(page)
