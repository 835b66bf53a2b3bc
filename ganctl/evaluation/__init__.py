"""The parts of ``ganctl evaluate``: torch-fidelity's metrics and features (:mod:`.fidelity`), the
Inception weights in the store (:mod:`.weights`), the Inception space (:mod:`.standard`), the
classifier space (:mod:`.in_domain`: the small dataset classifier of :mod:`.classifier`, cached by
:mod:`.cache`, on the real splits of :mod:`.splits`) and the cache of the real side's features
(:mod:`.reference`). :mod:`ganctl.evaluation.evaluate` puts them together."""
