"""Lesson: model compression as a guided walk, one step at a time, predict-then-reveal, for a class.

The plan (steps, the pages they open): ui.topics.lesson_plan; words, figures and predictions: ui.topics.lesson
(numbers from compress_core.lesson and the topic modules).
"""
import streamlit as st

from ui.sidebar import selection
from ui.state import remember, to_bool, url_value, url_widget
from ui.topics import lesson as ui_lesson
from ui.topics.lesson_plan import STEPS, TAXONOMY

sel = selection()
SS = st.session_state
N = len(STEPS)

c1, c2, c3 = st.columns([2, 2, 2])
presenter = url_widget(c1.toggle, "lesson_presenter", False, "Presenter view", cast=to_bool,
                       help="Large type, no sidebar: for a projector. ← and → move between steps.")
if presenter:
    st.html(ui_lesson.PRESENTER_CSS)
    # the toggle keeps the keyboard focus, and Streamlit ignores shortcuts while a control has it: give the focus
    # back to the page, so ← and → work the moment presenter view is on (no click needed first)
    st.html(ui_lesson.RELEASE_FOCUS_JS, unsafe_allow_javascript=True)
if c2.button("Prepare the lesson", key="lesson_prepare",
             help="Computes every step's expensive results now (curves, the lottery run, QAT), so stepping "
                  "through never waits in front of the class."):
    SS["lesson_preparing"] = True
if SS.get("lesson_preparing"):
    with c2:
        if ui_lesson.prepare(sel.seed):
            st.caption("Ready: every step is prepared.")
            SS["lesson_preparing"] = False
c3.download_button("Download the handout (HTML)", ui_lesson.handout(SS.get("lesson_figures", {})),
                   "compression-lesson.html", "text/html", key="lesson_handout",
                   help="Every step's text and the figures shown so far, in one file that opens offline.")

i = url_value("lesson_step", 1, cast=int, check=lambda v: 1 <= v <= N)
step = STEPS[i - 1]
st.title(f"{i} · {step.title}")
st.progress(i / N, text=f"Step {i} of {N} · on {step.dataset} · {step.model}")
if (step.dataset, step.model) != (sel.dataset, sel.model):  # where the eye is: the sidebar may be hidden, or say else
    st.info(f"**This step runs on {step.dataset} · {step.model}**, not on the sidebar's {sel.dataset} · {sel.model}: "
            "its effect shows best there. The other pages keep the sidebar's choice.", icon="🔀")
st.markdown(ui_lesson.TEXT[step.key])

figures = ui_lesson.RENDER[step.key](sel.seed)
for j, fig in enumerate(figures):
    if step.key == "taxonomy":
        event = st.plotly_chart(fig, key="lesson_taxonomy", on_select="rerun", selection_mode="points")
        points = event.selection.points if event and event.selection else []
        if points:  # a branch clicked: open its live view
            page, settings = next(v for axis in TAXONOMY.values() for k, v in axis.items()
                                  if k == points[0]["customdata"])
            SS.update(settings)
            st.switch_page(f"app_pages/{page}.py")
    else:
        st.plotly_chart(fig, key=f"lesson_fig_{step.key}_{j}")
if figures:
    ui_lesson.remember(step.key, figures)
if step.key == "taxonomy":
    cols = st.columns(len(TAXONOMY))
    for col, (axis, leaves) in zip(cols, TAXONOMY.items()):
        col.markdown(f"**{axis}**")
        for leaf, (page, settings) in leaves.items():
            col.page_link(f"app_pages/{page}.py", label=leaf, query_params={
                "dataset": step.dataset, "model": step.model, **{k: str(v) for k, v in settings.items()}})
st.page_link(f"app_pages/{step.page}.py", label=f"Go further: the full {step.page} page", icon="➡️",
             query_params={"dataset": step.dataset, "model": step.model})


def go(to: int) -> None:
    SS["lesson_step"] = max(1, min(N, to))


b1, _, b2 = st.columns([1, 4, 1])
b1.button("← Back", key="lesson_back", on_click=go, args=(i - 1,), disabled=i == 1, shortcut="Left")
b2.button("Next →", key="lesson_next", on_click=go, args=(i + 1,), disabled=i == N, shortcut="Right",
          type="primary")
remember("lesson_step")
