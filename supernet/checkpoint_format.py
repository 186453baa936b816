"""The entries ``supernet-train`` adds to its Lightning checkpoints: written by ``supernet.training``,
read by ``supernet.child`` and ``supernet.analysis`` (so neither imports the other's package).

``checkpoint[CHECKPOINT_KEY]`` holds plain data: ``space`` (the space's declaration),
``num_classes``, ``in_chans``, ``model_kwargs``, ``val_children`` ({name: arch string}),
``sampler`` and, with PA&DA data sampling, ``data_sampler`` (their state dicts), and with few-shot
training ``fewshot`` (the routing of its ``SupernetCollection``: member count and splits made). The
supernet's weights are the ``state_dict`` entries under ``WEIGHTS_PREFIX``.
"""

CHECKPOINT_KEY = "supernet"
WEIGHTS_PREFIX = "supernet."  # SupernetModule keeps the model as ``self.supernet``
