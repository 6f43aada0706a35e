"""An offline English text corpus from Python's own documentation, split and batched.

Python ships the text of its language reference topics in
``pydoc_data/topics.py`` (about 0.5 MB of English prose with code samples,
used by ``help()``); it is present wherever Python is, so the language-model
experiment needs no download. Optionally the sources of a fixed list of
standard-library modules are appended.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from sciprob.learning.lowrank.lm import ByteTokenizer

# A fixed, documented list keeps the corpus identical across machines of one Python version.
STDLIB_MODULES = (
    "argparse",
    "collections",
    "dataclasses",
    "functools",
    "json",
    "pathlib",
    "textwrap",
    "typing",
)


@dataclass(frozen=True)
class CorpusSplit:
    """Token streams of the training and validation parts.

    Attributes
    ----------
    train : LongTensor of shape (n_train,)
    val : LongTensor of shape (n_val,)
    """

    train: Tensor
    val: Tensor


def load_corpus_text(include_stdlib: bool = False) -> str:
    """Return the corpus as one string.

    Parameters
    ----------
    include_stdlib : bool, default=False
        Append the sources of :data:`STDLIB_MODULES` (about 1 MB more).

    Returns
    -------
    str
        The pydoc topics in sorted key order, separated by blank lines, then
        the module sources in the listed order.
    """
    from pydoc_data.topics import topics

    parts = [topics[key] for key in sorted(topics)]
    if include_stdlib:
        for name in STDLIB_MODULES:
            spec = importlib.util.find_spec(name)
            origin = Path(spec.origin) if spec and spec.origin else None
            if origin is None or not origin.exists():
                raise FileNotFoundError(
                    f"standard-library source of {name!r} not found; use include_stdlib=False"
                )
            if origin.name == "__init__.py":
                parts.extend(p.read_text(encoding="utf-8") for p in sorted(origin.parent.glob("*.py")))
            else:
                parts.append(origin.read_text(encoding="utf-8"))
    return "\n\n".join(parts)


def split_tokens(tokens: Tensor, block_size: int = 4096, val_every: int = 10) -> CorpusSplit:
    """Split a token stream deterministically into training and validation parts.

    The stream is cut into consecutive blocks of ``block_size`` tokens; every
    ``val_every``-th block (the last of each group) goes to validation, so both
    parts sample the whole corpus and never overlap.

    Parameters
    ----------
    tokens : LongTensor of shape (n,)
    block_size : int, default=4096
    val_every : int, default=10
        One block in ``val_every`` is validation (10 %).

    Returns
    -------
    CorpusSplit

    Raises
    ------
    ValueError
        ``block_size < 2``, ``val_every < 2`` or fewer than ``val_every`` blocks.
    """
    if block_size < 2:
        raise ValueError(f"`block_size` must be >= 2, got {block_size}")
    if val_every < 2:
        raise ValueError(f"`val_every` must be >= 2, got {val_every}")
    n_blocks = tokens.numel() // block_size
    if n_blocks < val_every:
        raise ValueError(
            f"{tokens.numel()} tokens make {n_blocks} blocks, fewer than `val_every`={val_every}"
        )
    blocks = tokens[: n_blocks * block_size].view(n_blocks, block_size)
    is_val = (torch.arange(n_blocks) % val_every) == val_every - 1
    return CorpusSplit(train=blocks[~is_val].reshape(-1), val=blocks[is_val].reshape(-1))


def load_corpus(include_stdlib: bool = False, block_size: int = 4096, val_every: int = 10) -> CorpusSplit:
    """Byte-tokenise :func:`load_corpus_text` and :func:`split_tokens` it."""
    return split_tokens(ByteTokenizer().encode(load_corpus_text(include_stdlib)), block_size, val_every)


def random_windows(tokens: Tensor, batch_size: int, seq_len: int, generator: torch.Generator) -> Tensor:
    """Draw ``batch_size`` random windows of ``seq_len + 1`` tokens.

    Parameters
    ----------
    tokens : LongTensor of shape (n,)
    batch_size : int
    seq_len : int
    generator : torch.Generator
        CPU generator; it alone decides the batch, so runs are reproducible.

    Returns
    -------
    LongTensor of shape (batch_size, seq_len + 1)
    """
    if tokens.numel() <= seq_len + 1:
        raise ValueError(f"`seq_len`={seq_len} needs more than {tokens.numel()} tokens")
    starts = torch.randint(0, tokens.numel() - seq_len - 1, (batch_size,), generator=generator)
    return torch.stack([tokens[s : s + seq_len + 1] for s in starts.tolist()])


def eval_windows(tokens: Tensor, seq_len: int, max_windows: int | None = None) -> Tensor:
    """Consecutive non-overlapping windows of ``seq_len + 1`` tokens for evaluation.

    Returns
    -------
    LongTensor of shape (n_windows, seq_len + 1)
        At most ``max_windows`` windows, evenly spread over the stream.
    """
    n = (tokens.numel() - 1) // seq_len
    if n < 1:
        raise ValueError(f"`seq_len`={seq_len} needs more than {tokens.numel()} tokens")
    idx = torch.arange(n)
    if max_windows is not None and n > max_windows:
        idx = torch.linspace(0, n - 1, max_windows).round().long()
    return torch.stack([tokens[i * seq_len : i * seq_len + seq_len + 1] for i in idx.tolist()])
