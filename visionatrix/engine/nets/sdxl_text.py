"""SDXL prompt encoding: two CLIP tokenizers and text encoders -> one conditioning, as ComfyUI does it.

- The prompt is split into weighted segments (``prompt_weights``: ``(word:1.3)``, ``(word)``, ``\\(``).
  Each segment is tokenized whole and its tokens are packed into windows of ``<start>`` + 75
  tokens + ``<end>``, padded to 77 (ViT-L pads with ``<end>``, bigG with ``!``). A segment shorter
  than 8 tokens that does not fit the current window moves whole to the next one; a longer one is
  split. A long prompt therefore gives 77·k positions instead of being truncated.
- Each encoder encodes every window; the hidden states of the chosen layer (the penultimate by
  default; ``CLIPSetLastLayer`` picks another), before the final layer norm, are concatenated:
  768 + 1280 = 2048 features. The pooled vector is bigG's projected end-token state of the first
  window.
- Weights: when any token's weight is not 1, the empty prompt is encoded too, and each weighted
  token's state becomes ``empty + (state - empty) · weight``, position by position.
- ``embedding:name`` (textual inversion) is split out of its segment as ComfyUI does it (at a space
  or newline before ``embedding:``; a trailing comma is retried without it and then tokenized as
  text). A name with no file is ignored with a warning, as ComfyUI ignores it (flows such as
  Juggernaut XL name embeddings the model catalog does not ship); an embedding file that exists is
  refused by name, since applying textual-inversion vectors is not implemented here.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.nets import prompt_weights
from visionatrix.engine.nets.sdxl_loader import BUILTIN_DIR
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch

WINDOW = 77  # encoder positions per window
_KEEP_WHOLE = 8  # segments of fewer tokens never straddle two windows
_EMBEDDING = "embedding:"
_TOKENIZE_CHUNK = 4096  # characters tokenized between cancel checks
DEFAULT_LAYER = -2  # ComfyUI's SDXL default: both encoders' penultimate hidden states

Weighted = list[tuple[int, float]]
FindEmbedding = Callable[[str], Path | None]  # an embedding's name -> its file, None when there is none

log = logging.getLogger(__name__)


@lru_cache(maxsize=2)
def tokenizer(name: str) -> Any:
    """``"tokenizer"`` (ViT-L) or ``"tokenizer_2"`` (bigG), built from the package's BPE files."""
    from transformers import CLIPTokenizer

    settings = json.loads((BUILTIN_DIR / name / "tokenizer_config.json").read_text(encoding="utf-8"))
    files = (BUILTIN_DIR / name / settings.get("vocab_from", ".")).resolve()
    vocab = json.loads((files / "vocab.json").read_text(encoding="utf-8"))
    lines = (files / "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split()) for line in lines[1:] if line]
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        bos_token=settings["bos_token"],
        eos_token=settings["eos_token"],
        pad_token=settings["pad_token"],
        unk_token=settings["unk_token"],
        model_max_length=settings["model_max_length"],
    )


def _segment_tokens(tok: Any, text: str, check_cancel: Callable[[], None]) -> list[int]:
    """The tokens of ``text`` without start/end, tokenized in whitespace-bounded chunks.

    CLIP's tokenizer splits words on whitespace before BPE, so chunking at whitespace gives the
    same tokens as one call, and a megabyte-long prompt stays cancellable.
    """
    ids: list[int] = []
    start = 0
    while start < len(text):
        end = start + _TOKENIZE_CHUNK
        if end < len(text):
            space = re.search(r"\s", text[end:])
            end = end + space.start() if space else len(text)
        check_cancel()
        ids += tok(text[start:end], add_special_tokens=False, truncation=False)["input_ids"]
        start = end
    return ids


def _words(segment: str) -> list[str]:
    """``segment`` cut before each ``embedding:`` that follows a space or newline (ComfyUI's split)."""
    parts = re.split(rf" {_EMBEDDING}|\n{_EMBEDDING}", segment)
    return [w for w in [parts[0], *(_EMBEDDING + p for p in parts[1:])] if w != ""]


def _embedding_leftover(word: str, find: FindEmbedding) -> str:
    """The text of ``word`` (``embedding:…``) left to tokenize; refuses an embedding file that exists."""
    name = word[len(_EMBEDDING) :].strip("\n")
    path, leftover = find(name), ""
    if path is None:
        stripped = name.strip(",")
        if len(stripped) < len(name):
            path, leftover = find(stripped), name[len(stripped) :]
    if path is not None:
        raise InvalidInput(
            f"prompt: {_EMBEDDING}{name.strip(',')} ({path.name}): textual-inversion embeddings are not "
            "supported here"
        )
    log.warning("embedding:%s does not exist, ignoring", name)
    return leftover


def tokenize_with_weights(
    text: str,
    name: str,
    check_cancel: Callable[[], None] = lambda: None,
    find_embedding: FindEmbedding = lambda name: None,
) -> list[Weighted]:
    """``text`` as 77-token windows of (token, weight) for tokenizer ``name``."""
    tok = tokenizer(name)
    groups: list[Weighted] = []
    for segment, weight in prompt_weights.parse(text):
        if not math.isfinite(weight):
            raise InvalidInput(f"prompt: weight {weight} of {segment!r} is not a finite number")
        for word in _words(segment):
            if word.startswith(_EMBEDDING):
                word = _embedding_leftover(word, find_embedding)
            if word:
                groups.append([(t, weight) for t in _segment_tokens(tok, word, check_cancel)])
    return _pack_windows(groups, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)


def _pack_windows(groups: list[Weighted], start: int, end: int, pad: int) -> list[Weighted]:
    windows: list[Weighted] = []
    window: Weighted = [(start, 1.0)]
    for group in groups:
        splittable = len(group) >= _KEEP_WHOLE
        while group:
            if len(group) + len(window) <= WINDOW - 1:
                window += group
                break
            room = WINDOW - 1 - len(window)
            if splittable:
                window += group[:room]
                group = group[room:]
                window.append((end, 1.0))
            else:
                window += [(end, 1.0)] + [(pad, 1.0)] * room
            windows.append(window)
            window = [(start, 1.0)]
    window.append((end, 1.0))
    window += [(pad, 1.0)] * (WINDOW - len(window))
    return [*windows, window]


def token_windows(text: str, name: str) -> list[list[int]]:
    """The token ids of ``text``'s windows (weights dropped)."""
    return [[t for t, _ in window] for window in tokenize_with_weights(text, name)]


def _hidden(encoder: Any, ids: list[list[int]], layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states of ``layer`` (negative: from the last) and the pooled output, float32."""
    import torch

    out = encoder(input_ids=torch.tensor(ids, device=encoder.device), output_hidden_states=True)
    pooled = out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output
    layers = encoder.config.num_hidden_layers
    # ComfyUI falls back to the final (layer-normed) output for indices beyond the encoder's depth
    hidden = out.last_hidden_state if abs(layer) > layers else out.hidden_states[layer]
    return hidden.float(), pooled.float()


def _encode_weighted(
    encoder: Any, windows: list[Weighted], empty: list[int], layer: int, check_cancel: Callable[[], None]
) -> tuple[torch.Tensor, torch.Tensor]:
    """One encoder's (1, 77·k, width) states for ``windows`` and the first window's pooled vector."""
    import torch

    weighted = any(w != 1.0 for window in windows for _, w in window)
    z_empty = _hidden(encoder, [empty], layer)[0][0] if weighted else None
    parts = []
    pooled = None
    for window in windows:
        check_cancel()
        z, p = _hidden(encoder, [[t for t, _ in window]], layer)
        pooled = p if pooled is None else pooled
        if z_empty is not None:
            weights = torch.tensor([w for _, w in window], device=z.device, dtype=z.dtype)[:, None]
            z[0] = torch.where(weights != 1.0, (z[0] - z_empty) * weights + z_empty, z[0])
        parts.append(z)
    assert pooled is not None
    return torch.cat(parts, dim=-2), pooled


def encode_prompt(
    text_encoder: Any,
    text_encoder_2: Any,
    text: str,
    layer: int = DEFAULT_LAYER,
    check_cancel: Callable[[], None] = lambda: None,
    find_embedding: FindEmbedding = lambda name: None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``text`` encoded by both SDXL encoders: (embeds (1, 77·k, 2048), pooled (1, 1280)), CPU float32.

    ``check_cancel`` is called between windows (a megabyte prompt is thousands of them);
    ``find_embedding`` finds the file of an ``embedding:name``.
    """
    import torch

    encoded = []
    for encoder, name in ((text_encoder, "tokenizer"), (text_encoder_2, "tokenizer_2")):
        tok = tokenizer(name)
        windows = tokenize_with_weights(text, name, check_cancel, find_embedding)
        empty = [tok.bos_token_id, tok.eos_token_id] + [tok.pad_token_id] * (WINDOW - 2)
        with torch.inference_mode():
            encoded.append(_encode_weighted(encoder, windows, empty, layer, check_cancel))
    (z_l, _), (z_g, pooled) = encoded
    cut = min(z_l.shape[1], z_g.shape[1])
    return torch.cat([z_l[:, :cut], z_g[:, :cut]], dim=-1).cpu(), pooled.cpu()
