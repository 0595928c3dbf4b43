"""GPU memory and speed (issue 4): the analytic model, the CUDA bench and ``hypertok vram``.

``memory`` (analytic, no torch), ``bench`` (CUDA measurements; torch imported inside
functions), ``vram`` (the sweep command), ``report`` (break-even and claim tables,
Markdown, CSV and plots). Nothing here is imported by ``import hypertok``.
"""
