"""The lip-sync network: a window of feature frames -> viseme probabilities and jaw opening.

Input ``features`` [batch, context + 1 + lookahead, BANDS]: the frame to predict sits at index
``context``, followed by ``lookahead`` future frames. A shared per-frame projection, then a
small MLP over the whole window; small enough to run 100 times a second on one core.
"""

from __future__ import annotations

import torch
from torch import nn

from engines.speech.features import BANDS
from engines.speech.visemes import VISEMES


class LipSyncNet(nn.Module):
    def __init__(
        self, context: int, lookahead: int, scale: float, hidden: int = 256, per_frame: int = 48
    ) -> None:
        super().__init__()
        self.context = context
        self.lookahead = lookahead
        self.scale: torch.Tensor
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.project = nn.Linear(BANDS, per_frame)
        window = context + 1 + lookahead
        self.body = nn.Sequential(
            nn.GELU(),
            nn.Flatten(),
            nn.Linear(window * per_frame, hidden),
            nn.GELU(),
            nn.Dropout(0.15),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Dropout(0.15),
        )
        self.head = nn.Linear(hidden, len(VISEMES) + 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (viseme logits [batch, 15], jaw logit [batch])."""
        out = self.head(self.body(self.project(features / self.scale)))
        return out[:, :-1], out[:, -1]


class ExportedLipSync(nn.Module):
    """What ships: probabilities and a 0..1 jaw instead of logits."""

    def __init__(self, net: LipSyncNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, jaw = self.net(features)
        return torch.softmax(logits, dim=-1), torch.sigmoid(jaw)
