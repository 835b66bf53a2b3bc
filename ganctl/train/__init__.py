"""Training: the request and the run's setup (:mod:`.setup`), the trainer, the loop (:mod:`.engine`),
the objectives, the callbacks, augmentation and the tracker table (:mod:`.tracking`)."""
