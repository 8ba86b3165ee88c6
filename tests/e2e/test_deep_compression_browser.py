"""The Deep compression page in Chromium: run the pipeline, see the stage table and the charts."""
from .conftest import open_page, screenshot, wait_for_count


def test_pipeline_stage_table_and_charts(server_url, page):
    open_page(page, server_url + "/deep-compression?dc_sparsity=90.0&dc_rounds=2&dc_epochs=1&dc_bits=4&dc_cepochs=1")
    page.get_by_text("Han's formula vs measured").first.wait_for(timeout=60_000)
    table = page.locator('[data-testid="stDataFrame"]').first
    table.wait_for(timeout=30_000)
    wait_for_count(page.locator(".js-plotly-plot"), 4)
    titles = " | ".join(page.locator(".js-plotly-plot .gtitle").all_text_contents())
    for t in ("Stored size by stage", "Test accuracy by stage", "16 shared values", "formula vs measured"):
        assert t in titles, titles
    def metric(label):
        box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
        return float(box.locator('[data-testid="stMetricValue"]').inner_text().split()[0])

    # the size chart's bar labels: one per stage (dense, 2 pruning rounds, k-means, tuned centroids)
    labels = page.locator(".js-plotly-plot").first.locator(".bartext").all_text_contents()
    assert len(labels) == 5 and labels[0].endswith("1.0×"), labels
    assert labels[0].startswith(f"{metric('Dense size'):.1f} KB")
    assert metric("Final size") < metric("Dense size") / 8
    shot = screenshot(page, "deep_compression")
    assert shot.stat().st_size > 50_000
