"""The augmentations themselves, on tensors, differentiable: DiffAugment's three
(:mod:`~ganctl.train.augment.diffaugment`), ADA's pipeline and its heuristic
(:mod:`~ganctl.train.augment.ada`), and the objectives' entry point
(:mod:`~ganctl.train.augment.pipeline`). What ``--augment`` accepts and how a config records it is
:mod:`ganctl.augment_spec`, torch-free, below every stage."""
