"""Flux's text encoders: T5-XXL (the token states) and CLIP ViT-L (the pooled vector), ComfyUI's way.

Files: ``t5xxl_fp16.safetensors`` / ``t5xxl_fp8_e4m3fn.safetensors`` (transformers' ``T5EncoderModel``
names) and ``clip_l.safetensors`` (transformers' ``CLIPTextModel`` names under ``text_model.``), or
the same under ``text_encoders.{t5xxl,clip_l}.transformer.`` in an all-in-one checkpoint. Both are
built on ``meta`` and filled tensor by tensor; an 8-bit T5 keeps its linear weights 8-bit and
casts each layer up as it runs.

Encoding follows ComfyUI's ``FluxClipModel``:

- T5: the prompt's weighted segments (``(word:1.2)``) are tokenized whole (``embedding:name`` words
  split out and ignored, as for CLIP: no textual inversion here), ``</s>`` appended, padded
  with ``<pad>`` to at least 256 tokens (never truncated); the final layer-normed states are used.
  With weights, the empty prompt (``</s>`` + pads) is encoded too and weighted tokens are moved
  away from it: ``empty + (state - empty) · weight``.
- CLIP-L: 77-token windows as for SDXL (``sdxl_text``); only the pooled vector of the first
  window is used (not projected).

Memory: on a GPU the encoders live on the CPU and visit the GPU only while encoding (a 9.5 GB T5
must not sit beside a 12 GB transformer on a 24 GB card).
"""

from __future__ import annotations

import gzip
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.nets import prompt_weights, weights
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch

TOKENIZER_FILE = Path(__file__).resolve().parents[2] / "builtin" / "flux" / "t5_tokenizer.json.gz"
T5_MIN_LENGTH = 256
T5_END, T5_PAD = 1, 0
T5_CHECKPOINT_PREFIX = "text_encoders.t5xxl.transformer."
CLIP_CHECKPOINT_PREFIX = "text_encoders.clip_l.transformer."
_T5_MARK = "encoder.block.0.layer.0.SelfAttention.q.weight"
_CLIP_MARK = "text_model.encoder.layers.0.mlp.fc1.weight"


@lru_cache(maxsize=1)
def t5_tokenizer() -> Any:
    """Google's T5 SentencePiece vocabulary (32 000 pieces + 100 sentinels), as ``tokenizers`` reads it."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(gzip.decompress(TOKENIZER_FILE.read_bytes()).decode("utf-8"))


def t5_tokens(text: str, check_cancel: Callable[[], None] = lambda: None) -> list[tuple[int, float]]:
    """``text`` as (token, weight) pairs for T5: segments, ``</s>``, pads up to 256."""
    from visionatrix.engine.nets.sdxl_text import _EMBEDDING, _embedding_leftover, _words

    tok = t5_tokenizer()
    pairs: list[tuple[int, float]] = []
    for segment, weight in prompt_weights.parse(text):
        if not math.isfinite(weight):
            raise InvalidInput(f"prompt: weight {weight} of {segment!r} is not a finite number")
        for word in _words(segment):  # ``embedding:name`` words as the CLIP side treats them
            if word.startswith(_EMBEDDING):
                word = _embedding_leftover(word, lambda name: None)
            if word:
                check_cancel()
                pairs += [(t, weight) for t in tok.encode(word).ids[:-1]]
    pairs.append((T5_END, 1.0))
    return pairs + [(T5_PAD, 1.0)] * (T5_MIN_LENGTH - len(pairs))


def which_encoder(path: Path, prefix: str = "") -> str:
    """ "t5" or "clip_l": what the file at ``path`` holds (by ComfyUI's telltale tensor names)."""
    names = weights.header_shapes(path)
    if prefix + _T5_MARK in names:
        return "t5"
    if prefix + _CLIP_MARK in names:
        return "clip_l"
    raise InvalidInput(f"{path.name} is neither a T5 nor a CLIP-L text encoder")


# --- building --------------------------------------------------------------------------------------


def t5_config(shapes: dict[str, tuple[int, ...]], prefix: str = "") -> Any:
    from transformers import T5Config

    p = prefix
    vocab, width = shapes.get(p + "shared.weight") or shapes[p + "encoder.embed_tokens.weight"]
    buckets, heads = shapes[p + "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
    gated = p + "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" in shapes
    ff = shapes[
        p
        + (
            "encoder.block.0.layer.1.DenseReluDense.wi_0.weight"
            if gated
            else "encoder.block.0.layer.1.DenseReluDense.wi.weight"
        )
    ]
    layers = len({m[1] for n in shapes if (m := re.match(re.escape(p) + r"encoder\.block\.(\d+)\.", n))})
    return T5Config(
        vocab_size=vocab,
        d_model=width,
        d_kv=shapes[p + _T5_MARK][0] // heads,
        d_ff=ff[0],
        num_layers=layers,
        num_heads=heads,
        relative_attention_num_buckets=buckets,
        relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu" if gated else "relu",
        is_encoder_decoder=False,
        use_cache=False,
        layer_norm_epsilon=1e-6,
    )


def clip_config(shapes: dict[str, tuple[int, ...]], prefix: str = "") -> Any:
    from transformers import CLIPTextConfig

    from visionatrix.engine.nets.sdxl_loader import builtin_config

    p = prefix + "text_model."
    vocab, width = shapes[p + "embeddings.token_embedding.weight"]
    layers = len({m[1] for n in shapes if (m := re.match(re.escape(p) + r"encoder\.layers\.(\d+)\.", n))})
    fields = {k: v for k, v in builtin_config("text_encoder").items() if k != "architectures"}
    fields.update(
        vocab_size=vocab,
        hidden_size=width,
        num_attention_heads=max(1, width // 64),
        num_hidden_layers=layers,
        intermediate_size=shapes[p + "encoder.layers.0.mlp.fc1.weight"][0],
        max_position_embeddings=shapes[p + "embeddings.position_embedding.weight"][0],
    )
    return CLIPTextConfig(**fields)


def _linear_names(module: Any) -> set[str]:
    import torch

    return {
        f"{n}.{p}"
        for n, m in module.named_modules()
        if isinstance(m, torch.nn.Linear)
        for p in ("weight", "bias")
    }


def _storage(path: Path, prefix: str, compute: torch.dtype) -> torch.dtype:
    """8-bit files stay 8-bit (their linear layers); anything else is kept at ``compute``."""
    import torch

    dtype = weights.header_dtypes(path).get(prefix + _T5_MARK, "")
    return {"F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}.get(dtype, compute)


def load_t5(path: Path, device: str, compute: torch.dtype, prefix: str = "") -> tuple[Any, int]:
    """The T5 encoder of ``path`` on ``device`` and the bytes it takes."""
    import torch
    from transformers import T5EncoderModel

    shapes = weights.header_shapes(path)
    with torch.device("meta"):
        model = T5EncoderModel(t5_config(shapes, prefix))
    storage = _storage(path, prefix, compute)
    # transformers' T5 casts the feed-forward output projection's *input* to that layer's weight
    # dtype, so ``wo`` stays at the compute dtype; every other linear layer may be 8-bit
    linear = {n for n in _linear_names(model) if ".wo." not in n}

    def source(name: str) -> weights.Read:
        if name == "shared.weight" and prefix + name not in shapes:
            return weights.Read(prefix + "encoder.embed_tokens.weight")
        return weights.Read(prefix + name)

    sources = {n: source(n) for n, _ in model.named_parameters()}
    weights.check_shapes(model, path, sources, "T5")
    missing = weights.load_into(model, path, sources, lambda n: storage if n in linear else compute, device)
    if missing:
        raise InvalidInput(f"{path.name}: T5 tensors missing for {', '.join(missing[:5])}")
    model.encoder.embed_tokens = model.shared  # tied in the published model
    if storage != compute:
        from visionatrix.engine.nets.cast_linear import cast_linear_layers

        cast_linear_layers(model, keep=lambda name: name.endswith(".wo"))
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    return model.eval().requires_grad_(False), size


def load_clip_l(path: Path, device: str, compute: torch.dtype, prefix: str = "") -> tuple[Any, int]:
    """The CLIP ViT-L text encoder of ``path`` on ``device`` and the bytes it takes."""
    import torch
    from transformers import CLIPTextModel

    shapes = weights.header_shapes(path)
    with torch.device("meta"):
        model = CLIPTextModel(clip_config(shapes, prefix))
    # transformers 4 nests the parameters under ``text_model.``, transformers 5 does not
    sources = {
        n: weights.Read(prefix + "text_model." + n.removeprefix("text_model."))
        for n, _ in model.named_parameters()
    }
    weights.check_shapes(model, path, sources, "CLIP-L")
    missing = weights.load_into(model, path, sources, lambda n: compute, device)
    if missing:
        raise InvalidInput(f"{path.name}: CLIP-L tensors missing for {', '.join(missing[:5])}")
    for name, buffer in list(model.named_buffers()):
        if buffer.is_meta:  # position ids are in no file
            owner, _, leaf = name.rpartition(".")
            model.get_submodule(owner).register_buffer(
                leaf, torch.arange(buffer.shape[-1]).expand(tuple(buffer.shape)), persistent=False
            )
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    return model.eval().requires_grad_(False), size


# --- encoding --------------------------------------------------------------------------------------


def encode_t5(encoder: Any, pairs: list[tuple[int, float]], check_cancel: Callable[[], None]) -> torch.Tensor:
    """(1, tokens, width) float32 states of ``pairs``, token weights applied as ComfyUI does."""
    import torch

    device = next(encoder.parameters()).device
    ids = [t for t, _ in pairs]
    weighted = any(w != 1.0 for _, w in pairs)
    batch = [ids, [T5_END] + [T5_PAD] * (len(ids) - 1)] if weighted else [ids]
    check_cancel()
    with torch.inference_mode():
        states = encoder(input_ids=torch.tensor(batch, device=device)).last_hidden_state.float()
    z = states[:1]
    if weighted:
        w = torch.tensor([w for _, w in pairs], device=z.device, dtype=z.dtype)[:, None]
        empty = states[1]
        z = torch.where(w != 1.0, (z[0] - empty) * w + empty, z[0])[None]
    return z.cpu()


def encode_clip_pooled(encoder: Any, text: str, check_cancel: Callable[[], None]) -> torch.Tensor:
    """(1, width) float32: CLIP-L's pooled output of the first 77-token window of ``text``."""
    import torch

    from visionatrix.engine.nets.sdxl_text import tokenize_with_weights

    window = tokenize_with_weights(text, "tokenizer", check_cancel)[0]
    device = next(encoder.parameters()).device
    check_cancel()
    with torch.inference_mode():
        out = encoder(input_ids=torch.tensor([[t for t, _ in window]], device=device))
    return out.pooler_output.float().cpu()


@dataclass
class FluxClip:
    """CLIP: Flux's two text encoders, kept on ``home`` and run on ``device`` when it has room."""

    t5: Any
    clip_l: Any
    device: str
    home: str
    identity: str = ""  # what the weights are (cache key, then each LoRA applied)

    def encode(
        self, clip_text: str, t5_text: str, check_cancel: Callable[[], None]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(T5 states (1, ≥256, 4096), CLIP-L pooled (1, 768)), CPU float32."""
        pairs = t5_tokens(t5_text, check_cancel)
        with self._visiting(self.t5):
            states = encode_t5(self.t5, pairs, check_cancel)
        with self._visiting(self.clip_l):
            pooled = encode_clip_pooled(self.clip_l, clip_text, check_cancel)
        return states, pooled

    def conditioning(self, text: str, check_cancel: Callable[[], None]) -> tuple[Any, ...]:
        """CLIPTextEncode's CONDITIONING: both encoders read the same prompt."""
        from visionatrix.engine.sampling.conditioning import CondPart

        states, pooled = self.encode(text, text, check_cancel)
        return (CondPart(states, pooled),)

    @contextmanager
    def _visiting(self, model: Any) -> Iterator[None]:
        """Run ``model`` on ``device`` (when it fits there) and put it back on ``home`` afterwards."""
        from visionatrix.engine.nets.memory import free_bytes

        size = sum(p.numel() * p.element_size() for p in model.parameters())
        move = self.device != self.home and (free_bytes(self.device) or 0) > size + (1 << 30)
        if move:
            model.to(self.device)
        try:
            yield
        finally:
            if move:
                import torch

                model.to(self.home)
                torch.cuda.empty_cache()
