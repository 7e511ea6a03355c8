"""vfi — video frame interpolation with an image-editing foundation model.

Importing ``vfi`` is cheap: torch, diffusers and OpenCV load only when a module that needs them is used.
"""

from vfi.errors import Cancelled, VFIError

__version__ = "0.1.0"
__all__ = ["Cancelled", "VFIError", "__version__"]
