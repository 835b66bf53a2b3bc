"""The parts of ``ganctl evaluate``: the Frechet distance (:mod:`.frechet`), the real splits a score
is measured against (:mod:`.splits`), the small dataset classifier (:mod:`.classifier`) and its
cache in the store (:mod:`.cache`). :mod:`ganctl.evaluate` puts them together."""
