"""The store in the user's data dir: where everything lives and the run folders (:mod:`.layout`), checkpoints, retention, generator specs and pretrained models."""
