"""Compute-only core: numpy arrays and FaceControls in, arrays and FaceControls out.

Nothing here starts threads, opens devices or imports Qt or ``avatar_app``.
"""
