"""ganctl: train and use generative adversarial networks from the command line."""

__version__ = "0.1.0"
