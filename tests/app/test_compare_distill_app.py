"""The Compare page's Distill step under AppTest: its fields as widgets, its place in a recipe, its control."""
from compress_core.experiments import Distill, Prune, Quantize

from .test_compare_app import PAGE, _link, _names, open_app

PRUNE = Prune(sparsity=0.8, finetune_epochs=0)


def test_a_distill_step_has_its_widgets_and_its_control_is_one_click_away():
    at = open_app(PAGE, {"cmp": _link(("kd", (PRUNE, Distill(epochs=1))))})
    assert not at.exception
    teacher = next(w for w in at.selectbox if w.key.endswith("_teacher"))
    assert teacher.value == "baseline" and teacher.options == ["the float baseline"]
    temp = next(w for w in at.number_input if w.key.endswith("_T"))
    alpha = next(w for w in at.number_input if w.key.endswith("_alpha"))
    assert (temp.value, alpha.value) == (4.0, 0.9)
    assert "distill T=4 α=0.9 1 ep" in at.dataframe[0].value["recipe"].iloc[0]
    alpha.set_value(0.5).run()
    assert not at.exception and "α=0.5" in at.dataframe[0].value["recipe"].iloc[0]
    at.button(key=next(b.key for b in at.button if b.key.startswith("cmp_control_"))).click().run()
    assert not at.exception
    assert _names(at) == ["kd", "kd (control)"]
    table = at.dataframe[0].value
    assert table["recipe"].iloc[1] == "prune unstructured 80% → fine-tune 1 ep (distillation control)"
    assert (table["test accuracy"] > 0.5).all()


def test_distill_goes_before_ptq_and_after_qat():
    at = open_app(PAGE, {"cmp": _link(("ptq", (PRUNE, Quantize(weight_bits=4))),
                                      ("qat", (Quantize(mode="qat", weight_bits=4, qat_epochs=1),)))})
    for i, words in ((0, "distill T=4 α=0.9 2 ep → PTQ w4a8"), (1, "QAT 1 ep w4a8 → distill T=4 α=0.9 2 ep")):
        kind = [w for w in at.selectbox if w.key.startswith("cmp_kind_")][i]
        kind.set_value("distill").run()
        at.button(key=kind.key.replace("cmp_kind_", "cmp_add_")).click().run()
        assert not at.exception
        assert words in at.dataframe[0].value["recipe"].iloc[i], at.dataframe[0].value["recipe"].iloc[i]
