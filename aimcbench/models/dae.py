"""The convolutional denoising autoencoder of study 000 (Fig. 3).

The architecture is derived from the study's parameter counts (see
/work/shared/design/models-and-devices.md): 94,321 parameters in total, of which the 3 convolutions
and 4 linear layers (88,384 with biases) are mapped onto analog tiles; the transposed convolutions,
batch norms and activations stay digital.
"""
from __future__ import annotations

import torch
from torch import nn


class DenoisingAutoencoder(nn.Module):
    """[B,1,28,28] noisy image -> [B,1,28,28] reconstruction in (0, 1) (sigmoid output)."""

    def __init__(self, latent_dim: int = 32):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),             # 28 -> 14
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),  # 14 -> 7
            nn.Conv2d(16, 32, 3, stride=2, padding=0), nn.ReLU(),           # 7 -> 3
            nn.Flatten(),
            nn.Linear(32 * 3 * 3, 128), nn.ReLU(),
            nn.Linear(128, latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 128), nn.ReLU(),
            nn.Linear(128, 32 * 3 * 3), nn.ReLU(),
            nn.Unflatten(1, (32, 3, 3)),
            nn.ConvTranspose2d(32, 16, 3, stride=2, output_padding=0),      # 3 -> 7
            nn.BatchNorm2d(16), nn.ReLU(),
            nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1),  # 7 -> 14
            nn.BatchNorm2d(8), nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1),   # 14 -> 28
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
