"""Motion sources that need no input device: idle life, speech prosody, and layering them."""

from engines.motion.idle import IdleMotion
from engines.motion.layers import layer, with_mouth
from engines.motion.prosody import ProsodyMotion

__all__ = ["IdleMotion", "ProsodyMotion", "layer", "with_mouth"]
