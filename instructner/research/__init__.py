"""Training and research: what makes and measures a model, never imported by the runtime.

Corpora and few-shot data (``data``, ``augment``, ``examples``, ``example_labels``,
``names``, ``novelty``), training (``training``, ``averaging``, ``export``, ``vocab``; the T5
model itself is ``instructner.modeling``), evaluation and studies (``evaluation``, ``metrics``,
``typing_accuracy``, ``ablation``, ``robustness``, ``robustness_run``, ``calibration``,
``calibration_plots``). The serving runtime imports none of it (import-linter contract in
pyproject.toml).
"""
