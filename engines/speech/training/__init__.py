"""Training of the lip-sync model: labelled speech, augmentation, the network and its export.

Needs the ``train`` extra (torch, onnx, espeakng-loader, pocketsphinx); nothing at run time
imports this package.
"""
