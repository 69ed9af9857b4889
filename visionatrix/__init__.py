"""Visionatrix for Python: an AI flow server speaking the Visionatrix task API.

Importing this package is cheap: nothing heavy (torch, diffusers, the web stack) loads here.
"""

__version__ = "0.1.0"
