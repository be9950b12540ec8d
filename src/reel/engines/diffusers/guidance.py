"""Classifier-free guidance in one transformer call per step, for pipelines that make two.

diffusers' Wan pipelines run the transformer twice per denoising step: once with the prompt
("cond"), then once with the negative prompt ("uncond"), every other input being the same
tensors. :func:`batched_guidance` patches a transformer's ``forward`` for the length of one
pipeline call: the cond call runs both halves as one batch of twice the size and returns the
cond half; the uncond call that follows, with the same inputs, gets the other half without
running the model. The output matches the two separate calls within float rounding (every
sample of a batch is computed independently) and costs one batch's activations more memory.

Pairing is by identity, so the pipeline must be given ``cond`` and ``uncond`` as its prompt
embeddings, already in the transformer's dtype and on its device (then they reach the
transformer unchanged). A call that does not match runs as it would have: a pipeline that calls
its model differently is only not faster, never wrong.

The same function serves any pipeline whose guidance passes differ in one keyword argument:
name that keyword with ``key`` and the other batched inputs with ``batched``. LTX-Video's and
LTX-2's pipelines already batch their prompt guidance themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import torch

__all__ = ["WAN_BATCHED", "batched_guidance"]

#: Inputs of a Wan transformer call that carry the batch dimension (besides the prompt).
WAN_BATCHED: Final = frozenset({"hidden_states", "timestep", "encoder_hidden_states_image"})


@contextmanager
def batched_guidance(
    modules: Iterable[torch.nn.Module],
    *,
    cond: torch.Tensor,
    uncond: torch.Tensor,
    key: str = "encoder_hidden_states",
    batched: Collection[str] = WAN_BATCHED,
) -> Iterator[None]:
    """Within this block, each module's cond call also computes the uncond call after it."""
    patched: list[tuple[torch.nn.Module, Callable[..., Any] | None]] = []
    try:
        for module in modules:
            previous = module.__dict__.get("forward")  # an offload hook may have set one
            pairing = _Pairing(module.forward, cond=cond, uncond=uncond, key=key, batched=batched)
            module.forward = pairing
            patched.append((module, previous))
        yield
    finally:
        for module, previous in reversed(patched):
            if previous is None:
                del module.forward
            else:
                module.forward = previous


class _Pairing:
    """One module's forward, answering a cond call and the uncond call after it as one batch."""

    def __init__(
        self,
        forward: Callable[..., Any],
        *,
        cond: torch.Tensor,
        uncond: torch.Tensor,
        key: str,
        batched: Collection[str],
    ) -> None:
        self._forward = forward
        self._cond = cond
        self._uncond = uncond
        self._key = key
        self._batched = frozenset(batched) | {key}
        #: The inputs of the last batched call and its uncond half, kept for the next call.
        self._pending: tuple[dict[str, object], object] | None = None
        #: How many batched calls ran (for tests and logs).
        self.batched_calls = 0

    def __call__(self, *args: object, **kwargs: object) -> object:
        pending, self._pending = self._pending, None
        embeds = kwargs.get(self._key)
        if not args and embeds is self._uncond and pending is not None:
            inputs, uncond_out = pending
            if _same(inputs, kwargs, skip=self._key):
                return uncond_out
        if args or embeds is not self._cond or not self._can_batch(kwargs):
            return self._forward(*args, **kwargs)
        import torch

        doubled = {
            name: (
                torch.cat([self._cond, self._uncond])
                if name == self._key
                else torch.cat([value, value])
                if name in self._batched and isinstance(value, torch.Tensor)
                else value
            )
            for name, value in kwargs.items()
        }
        cond_out, uncond_out = _split(self._forward(**doubled))
        self._pending = (kwargs, uncond_out)
        self.batched_calls += 1
        return cond_out

    def _can_batch(self, kwargs: Mapping[str, object]) -> bool:
        """Only tensors known to carry the batch may be doubled; anything else runs as is."""
        import torch

        hidden = kwargs.get("hidden_states")
        if not isinstance(hidden, torch.Tensor) or self._cond.shape != self._uncond.shape:
            return False
        batch = hidden.shape[0]
        if self._cond.shape[0] != batch:
            return False
        return not any(
            name not in self._batched or value.ndim == 0 or value.shape[0] != batch
            for name, value in kwargs.items()
            if isinstance(value, torch.Tensor)
        )


def _same(inputs: Mapping[str, object], kwargs: Mapping[str, object], *, skip: str) -> bool:
    """The same keyword arguments, each the very same object, except ``skip``."""
    if inputs.keys() != kwargs.keys():
        return False
    return all(inputs[name] is kwargs[name] for name in inputs if name != skip)


def _split(output: object) -> tuple[object, object]:
    """(first half, second half) of a model output: a tensor, a tuple or a diffusers output."""
    import torch

    if isinstance(output, torch.Tensor):
        first, second = output.chunk(2)
        return first, second
    if isinstance(output, tuple):
        halves = [
            _split(item) if isinstance(item, torch.Tensor) else (item, item) for item in output
        ]
        return tuple(h[0] for h in halves), tuple(h[1] for h in halves)
    if isinstance(output, Mapping):  # diffusers' BaseOutput is an OrderedDict
        items = {name: _split(value) for name, value in output.items()}
        head = type(output)(**{name: pair[0] for name, pair in items.items()})
        tail = type(output)(**{name: pair[1] for name, pair in items.items()})
        return head, tail
    raise TypeError(f"cannot split a {type(output).__name__} into guidance halves")
