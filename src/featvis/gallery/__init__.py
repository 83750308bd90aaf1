"""A static, offline, Microscope-like gallery: an index, a page per model, per layer and per unit.

The gallery reads files, not stage internals: unit pictures from the one unit tree
(``featvis.core.units``), layer figures by their place in ``results/<stage>/<model>/.../<layer>/``,
and each analysed dataset's per-image maxima for histograms. Every picture it shows is
copied into the gallery folder, so the folder opens from ``file://`` on its own (and can be
zipped and shared): no request leaves it.
"""
