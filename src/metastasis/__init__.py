"""metastasis: simulate how breast cancer spreads and how the care pathway sees and changes that spread.

Research and teaching software, not a medical device.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
