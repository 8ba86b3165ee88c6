"""One module per topic: what its page computes, caches and says beyond layout (the rule: ``ui/__init__.py``).

- ``home``: the start page's baseline numbers (no PyTorch when cached) and why compress at all
- ``pruning``, ``lottery``, ``quant``, ``integer``, ``deep_compression``, ``compare``, ``lm``: each page's controls,
  cached runs, explainers and metric rows
- ``quant_recover``, ``pruning_recover``, ``compare_debug``: "Which layer broke it?" and the accuracy-budget tabs of
  Quantization, Pruning and Compare (``compress_core.recover`` on screen)
- ``lesson`` and ``lesson_plan``: the guided lesson's steps (its plan: page names and widget keys) and what each says
"""
