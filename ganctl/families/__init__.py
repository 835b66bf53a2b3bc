"""The built-in model families, one file each (torch-free): networks, objective, presets and
their sources. :mod:`ganctl.families.registry` lists them."""
