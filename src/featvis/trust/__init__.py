"""The trust stage: evidence, per unit, about whether its feature visualization can be believed.

A render (feature visualization by optimization, Olah, Mordvintsev and Schubert, Distill 2017)
shows an image that drives a unit hard. Geirhos, Zimmermann, Bilodeau, Brendel and Kim, "Don't
trust your eyes: on the (un)reliability of feature visualizations" (ICML 2024), showed that a
network can be changed so that its renders show anything at all while its behaviour on natural
images stays the same: the render may reach the unit by a path natural images never take.

:mod:`featvis.trust.path` checks that path: at layers before the unit, does the render look
(in rank correlation of its channel vector) like the unit's top natural images, as much as
they look like each other, or not? :mod:`featvis.trust.rank` holds the batched Spearman
correlation it uses. See docs/trust.md.
"""
