"""What a trained network learned: activations, channel statistics, filters, top examples, activation
maximization, attributions and activation traces over frames (``report.inspect_run`` computes the lot).

No Django here: the CLI (``layerlab inspect``), the API and the dashboard all call ``inspect_run``.
"""
