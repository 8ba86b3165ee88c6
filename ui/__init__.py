"""The Streamlit side of Compression Lab, laid out by one rule: every line of UI code belongs in exactly one of
three places, and imports only point down (pages → ui.topics → ui → compress_core).

1. ``app_pages/<page>.py`` — the page's **layout**: its title and opening prose, the order of its sections and tabs,
   the controls it reads (``url_widget`` calls) and the charts it places (``st.plotly_chart`` of a
   ``compress_core.viz`` figure), and rows of ``st.metric`` showing library numbers as they come. A page computes
   nothing itself, caches nothing and holds no explainer text: it calls its topic module.
2. ``ui/topics/<topic>.py`` — everything **one topic** needs beyond layout: its cached and heavy computations
   (``Memo``, the heavy-run pool), control groups that build a library config (``controls()``), and its words:
   explainer boxes, published-figure boxes, verdict sentences, and metric rows that choose between cases (a
   classifier or the GPT) or pair and format standard errors. A topic may use another topic (Integer inference
   reuses Quantization's cached models; the Lesson uses every topic); there is no cycle.
3. ``ui/<module>.py`` — **plumbing** any page may use and that knows no topic: ``state`` (URL-bound widgets, lazy
   tabs), ``memo`` (the process-wide bounded cache), ``jobs`` (the heavy-run pool: progress, Cancel), ``loaders``
   (cached data sets and baselines), ``sidebar`` (the selection), ``uploads`` (a session's own files), ``warmup``
   (PyTorch imported in the background), ``explain`` (the explainer and published-figure boxes). It never imports a
   topic module.

Aliases, one convention: a topic module is imported as ``ui_<name>`` (``from ui.topics import quant as ui_quant``),
a figure module as ``viz_<name>`` (``from compress_core.viz import quant as viz_quant``). tests/test_ui_layout.py
checks the directions, the aliases and that no import cycle exists under ui/.
"""
