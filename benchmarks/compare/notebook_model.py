"""The seed notebook's checkerboard model (flow-matching.ipynb), written out in PyTorch.

Shared by benchmarks/compare (float32 timing and quality runs) and tests/fixtures (float64
reference values). The time embedding follows the dtype of t.
"""
import math

import torch


class NotebookMLP(torch.nn.Module):
    def __init__(self, channels_data=2, layers=5, channels=512, channels_t=512):
        super().__init__()
        self.channels_t = channels_t
        self.in_projection = torch.nn.Linear(channels_data, channels)
        self.t_projection = torch.nn.Linear(channels_t, channels)
        self.blocks = torch.nn.Sequential(
            *[torch.nn.Sequential(torch.nn.Linear(channels, channels), torch.nn.ReLU()) for _ in range(layers)])
        self.out_projection = torch.nn.Linear(channels, channels_data)

    def gen_t_embedding(self, t, max_positions=10000):
        t = t * max_positions
        half_dim = self.channels_t // 2
        emb = math.log(max_positions) / (half_dim - 1)
        emb = torch.arange(half_dim, device=t.device).to(t.dtype).mul(-emb).exp()
        emb = t[:, None] * emb[None, :]
        emb = torch.cat([emb.sin(), emb.cos()], dim=1)
        if self.channels_t % 2 == 1:
            emb = torch.nn.functional.pad(emb, (0, 1), mode="constant")
        return emb

    def forward(self, x, t):
        x = self.in_projection(x)
        t = self.gen_t_embedding(t)
        t = self.t_projection(t)
        x = x + t
        x = self.blocks(x)
        return self.out_projection(x)

    def linears_in_fmd_order(self):
        return [self.in_projection, self.t_projection] + [b[0] for b in self.blocks] + [self.out_projection]
