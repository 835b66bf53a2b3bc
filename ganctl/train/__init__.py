"""Training: the request and run setup (:mod:`.setup`), the trainer, the loop (:mod:`.engine`), feeders, objectives, callbacks, augmentation and the tracker table."""
