"""``hypertok adapt`` on several processes: ``torchrun --nproc-per-node N hypertok adapt ...`` (issue 14).

What it does:

- :func:`launched` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)
  and joins the process group (NCCL on CUDA, gloo on CPU); one process without torchrun
  gets :data:`SINGLE`, on which every method below is a no-op, so the one-process path is
  the same code.
- :meth:`Ranks.slice` gives each rank its own contiguous block of every global batch of
  rows. The global batch is ``--batch-size`` (each rank reads ``batch / N`` rows), drawn
  from the same seeded order of the packed, memory-mapped stream as on one process, so N
  processes see exactly the tokens one process sees, and each rank reads only its rows.
- :meth:`Ranks.wrap` puts the step's loss under PyTorch ``DistributedDataParallel``;
  :meth:`Ranks.loss` normalises it by the *global* target count, so the averaged gradient
  and the logged loss are those of one process on the whole batch (up to summation order).
- Only rank 0 writes: the prepared data, the log, the checkpoint and the adapter
  (:attr:`Ranks.main`, :meth:`Ranks.main_first`). The other ranks wait, then read.

Why DDP and not FSDP2 (tried on CPU/gloo with peft LoRA + ``trainable_token_indices``):
``fully_shard`` on each decoder layer, the embedding and the head (the issue's traps) does
run forward and backward there, once the loss is computed inside a root module, but it turns
every parameter into a ``DTensor``, so the checkpoint, the optimizer state, peft's
``save_pretrained`` and evaluation would all need a gathering layer, and a checkpoint
would no longer be the one-process file. What trains here is small (LoRA and the new rows:
0.8 GB of adapter at the 7B shape) and the frozen bf16 7B base fits one H200 with room to
spare (33 GB peak at stage 2, 49 GB with the distillation teacher, experiments/adapt/
results7b.json), so sharding the base buys memory nothing needs and costs an all-gather of
the whole base in forward and again in backward. DDP keeps every parameter a plain tensor:
the resize happens before wrapping, tied weights stay one tensor, nothing lands in a root
FSDP unit, and the checkpoint is the very file one process writes, so it resumes on any
number of processes. FSDP2 is what a base too large for one GPU (70B) would need.

The distillation teacher: each rank holds its own frozen copy (14.5 GB bf16 at 7B; the
teacher runs without gradient on the rank's own rows, so it needs no communication). On
GPUs that cannot hold it twice, it would be sharded with ``fully_shard`` (forward only) or
served from one GPU; not done here. The distillation loss is the mean of the ranks' losses,
which equals one process's only when the ranks have equal target and span counts (the
plain loss is exact, see :meth:`Ranks.loss`).

What it does not do: no sharding of the base, no multi-node setup beyond what torchrun
gives, no evaluation split across ranks (every rank evaluates the whole held-out text, so
all ranks log the same figures). torch is imported inside functions only.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from ..errors import HyperTokError


@dataclass(frozen=True)
class Ranks:
    """This process's place among ``world`` training processes (rank 0 writes)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, name: str) -> str:
        """The device of this rank: ``cuda``/``auto`` on a GPU machine become ``cuda:LOCAL_RANK``."""
        import torch

        if self.world == 1:
            return name
        if name.startswith("cuda:"):
            raise HyperTokError(f"--device {name}: under torchrun each process takes cuda:LOCAL_RANK; pass --device "
                                f"cuda or auto (choose the GPUs with CUDA_VISIBLE_DEVICES)")
        if name in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return name

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise HyperTokError(f"--batch-size {batch_size} is the global batch and must divide among the "
                                f"{self.world} processes; give a multiple of {self.world}")

    def slice(self, rows: list) -> list:
        """This rank's contiguous block of a global batch of rows.

        >>> Ranks(1, 2).slice([7, 3, 9, 4])
        [9, 4]
        """
        k = len(rows) // self.world
        return rows[self.rank * k:(self.rank + 1) * k]

    def wrap(self, model):
        """``model`` (a module whose forward returns the step's loss) under DDP; itself on one process."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        dev = next(model.parameters()).device
        return DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    def loss(self, nll, n: int):
        """(loss to backpropagate, the global mean loss as a float) from this rank's summed NLL
        and target count: ``nll / N_global * world``, whose gradient DDP averages over the ranks
        into ``sum of all ranks' nll / N_global``, the one-process gradient."""
        if self.world == 1:
            loss = nll / max(1, n)
            return loss, float(loss.detach())
        import torch
        import torch.distributed as dist

        both = torch.tensor([float(n), float(nll.detach())], dtype=torch.float64, device=nll.device)
        dist.all_reduce(both)
        total = max(1.0, float(both[0]))
        return nll / total * self.world, float(both[1]) / total

    def mean(self, values: dict) -> dict:
        """Floats averaged over the ranks (ints summed), for the log."""
        if self.world == 1 or not values:
            return values
        import torch
        import torch.distributed as dist

        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
        dist.all_reduce(t)
        return {k: (int(v) if isinstance(values[k], int) else v / self.world) for k, v in zip(keys, t.tolist())}

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Leave the process group that :func:`launched` joined (one it found joined stays)."""
        global _JOINED
        if _JOINED:
            import torch.distributed as dist

            dist.destroy_process_group()
            _JOINED = False

    @contextlib.contextmanager
    def main_first(self):
        """Rank 0 runs the body first (writing what the others then read); the others after it."""
        if not self.main:
            self.barrier()
        yield self.main
        if self.main:
            self.barrier()


SINGLE = Ranks()
_JOINED = False  # whether launched() joined the process group (then close() leaves it)


def launched(device: str = "auto") -> Ranks:
    """The ranks of a ``torchrun`` launch (joining its process group), or :data:`SINGLE`.

    The backend is NCCL when this rank trains on CUDA, gloo otherwise.
    """
    global _JOINED
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    import torch
    import torch.distributed as dist

    ranks = Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        cuda = ranks.device(device).startswith("cuda") and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(ranks.local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
        _JOINED = True
    return ranks


def loss_module(model, loss_fn):
    """A module whose forward is ``loss_fn(model, *args)``: what DDP wraps, so that its hooks see
    the whole step (the chunked loss calls the body and the head apart, never ``model(...)``)."""
    import torch

    class StepLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *args):
            return loss_fn(self.model, *args)

    return StepLoss()
