"""SDXL prompt encoding: two CLIP tokenizers and text encoders → one conditioning, as ComfyUI does it.

- Each prompt is tokenized without a length limit and cut into windows of 75 tokens; each window
  becomes ``<start> … <end>`` padded to 77 (ViT-L pads with ``<end>``, bigG with ``!``). A long
  prompt therefore gives 77·k positions instead of being truncated.
- Per window, both encoders' *penultimate* hidden states (before the final layer norm) are
  concatenated: 768 + 1280 = 2048 features. The pooled vector is bigG's projected end-token
  state of the first window.
- SDXL also conditions on image size numbers; a plain ``CLIPTextEncode`` in ComfyUI leaves them
  at 768×768, uncropped, and so does this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from visionatrix.engine.nets.sdxl_loader import BUILTIN_DIR

if TYPE_CHECKING:
    import torch

WINDOW = 75  # prompt tokens per 77-token encoder window
DEFAULT_SIZE = 768  # ComfyUI's SDXL size conditioning when a node sets none


@dataclass
class SdxlConditioning:
    """One encoded prompt (ComfyUI CONDITIONING): CPU float32 tensors plus SDXL's size numbers."""

    embeds: torch.Tensor  # (1, 77·k, 2048)
    pooled: torch.Tensor  # (1, 1280)
    width: int = DEFAULT_SIZE
    height: int = DEFAULT_SIZE
    crop_w: int = 0
    crop_h: int = 0
    target_width: int = DEFAULT_SIZE
    target_height: int = DEFAULT_SIZE

    def time_ids(self) -> list[float]:
        """SDXL's ``add_time_ids``: original size, crop offset, target size, height first."""
        sizes = (self.height, self.width, self.crop_h, self.crop_w, self.target_height, self.target_width)
        return [float(v) for v in sizes]


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


def token_windows(text: str, name: str) -> list[list[int]]:
    """``text`` as 77-token windows of tokenizer ``name``."""
    tok = tokenizer(name)
    ids = tok(text, add_special_tokens=False, truncation=False)["input_ids"]
    chunks = [ids[i : i + WINDOW] for i in range(0, len(ids), WINDOW)] or [[]]
    pad = [tok.pad_token_id] * WINDOW
    return [[tok.bos_token_id, *chunk, tok.eos_token_id, *pad[len(chunk) :]] for chunk in chunks]


def _hidden_and_pooled(encoder: Any, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = encoder(input_ids=ids, output_hidden_states=True)
    pooled = out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output
    return out.hidden_states[-2], pooled


def encode_prompt(text_encoder: Any, text_encoder_2: Any, text: str) -> SdxlConditioning:
    """Encode ``text`` with both SDXL text encoders (already on their device)."""
    import torch

    device = text_encoder.device
    windows_l = token_windows(text, "tokenizer")
    windows_g = token_windows(text, "tokenizer_2")
    parts = []
    pooled = None
    with torch.inference_mode():
        # the two tokenizers differ only in padding, so they cut a prompt into the same windows
        for ids_l, ids_g in zip(windows_l, windows_g, strict=True):
            hidden_l, _ = _hidden_and_pooled(text_encoder, torch.tensor([ids_l], device=device))
            hidden_g, pooled_g = _hidden_and_pooled(text_encoder_2, torch.tensor([ids_g], device=device))
            parts.append(torch.cat([hidden_l.float(), hidden_g.float()], dim=-1))
            pooled = pooled_g.float() if pooled is None else pooled
    assert pooled is not None
    return SdxlConditioning(embeds=torch.cat(parts, dim=1).cpu(), pooled=pooled.cpu())
