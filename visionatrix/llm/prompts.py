"""The prompts Visionatrix sends on its own: prompt translation and Surprise Me (random prompts).

Pure: builds ``Prompt``s and reads answers; the caller picks the provider.
"""

from __future__ import annotations

import json
import random
import string

from visionatrix.errors import ProviderError
from visionatrix.llm.base import Prompt, strip_thinking

TRANSLATION_INSTRUCTIONS = """\
You translate prompts for image generation models into English.
Keep the meaning, the order and the style of the original; answer with the translated prompt only,
no notes, no quotes around it, no explanations.
Text that should appear inside the picture (a sign, a caption, a label, words in quotes or in
backticks, or words after a colon naming such text) stays exactly as written, in its own language.
A prompt that is already in English comes back unchanged.
Example: «кот держит табличку "привет"» becomes «a cat holding a sign "привет"».
"""

_ASCII_LETTERS = frozenset(string.ascii_letters)
# share of words written only in Latin letters above which a text counts as English already
ENGLISH_SHARE = 0.9


def is_english(text: str) -> bool:
    """Whether ``text`` needs no translation: more than 90% of its words are plain Latin letters.

    Words without letters (numbers, punctuation, "4k" counts by its "k") do not vote.
    """
    words = ["".join(c for c in word if c.isalpha()) for word in text.split()]
    words = [w for w in words if w]
    if not words:
        return True
    latin = sum(1 for w in words if set(w) <= _ASCII_LETTERS)
    return latin / len(words) > ENGLISH_SHARE


def translation(text: str, system: str | None = None) -> Prompt:
    return Prompt(text=text, system=TRANSLATION_INSTRUCTIONS if system is None else system)


def translated_text(reply_text: str) -> str:
    return strip_thinking(reply_text)


# Surprise Me: a few random keywords per prompt steer the model away from repeating itself.
_KEYWORDS = {
    "subject": ("a lighthouse keeper", "a red fox", "an old robot", "a street musician", "a dragon",
                "a paper boat", "a desert caravan", "a glass greenhouse", "a sleeping giant", "an astronaut"),
    "setting": ("a misty forest", "a neon city at night", "a frozen lake", "an alpine village",
                "a sunken temple", "a rooftop garden", "a busy harbour", "a canyon at dawn"),
    "style": ("watercolor", "oil painting", "photorealistic", "ink drawing", "pixel art", "isometric 3d",
              "cinematic still", "art nouveau poster", "charcoal sketch", "low-poly render"),
    "mood": ("serene", "mysterious", "joyful", "melancholic", "epic", "whimsical", "tense", "dreamy"),
    "light": ("golden hour", "moonlight", "candlelight", "overcast", "neon glow", "backlit",
              "soft window light"),
    "palette": ("pastel", "monochrome", "vivid", "earth tones", "teal and orange", "sepia"),
}  # fmt: skip


def surprise_request(count: int, theme: str = "", rng: random.Random | None = None) -> Prompt:
    """One request for ``count`` distinct image prompts, answered as a JSON list of strings."""
    rng = rng or random.Random()
    lines = [
        f"Write {count} different prompts for an image generation model, each 15 to 40 words:",
        "comma-separated descriptive phrases naming a subject or scene and at least one style or",
        "quality cue, no explanations.",
    ]
    if theme.strip():
        lines.append(f"Every prompt must clearly be about this theme: {theme.strip()}")
    for n in range(1, count + 1):
        picks = rng.sample(sorted(_KEYWORDS), k=rng.randint(3, len(_KEYWORDS)))
        lines.append(f"Prompt {n} uses: " + "; ".join(f"{k} {rng.choice(_KEYWORDS[k])}" for k in picks))
    lines.append(f'Answer with a JSON array of exactly {count} strings: ["...", ...] and nothing else.')
    return Prompt(text="\n".join(lines), json=True)


def surprise_prompts(reply_text: str, count: int, provider: str) -> list[str]:
    """The ``count`` prompts in a Surprise Me answer; ``ProviderError`` when it is not that."""
    text = strip_thinking(reply_text).removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, dict) and len(value) == 1:  # JSON mode may wrap the list in an object
        value = next(iter(value.values()))
    if not isinstance(value, list) or len(value) < count or not all(isinstance(v, str) and v for v in value):
        raise ProviderError(
            provider, f"Surprise Me wanted a JSON list of {count} prompts, got: {text[:200]!r}"
        )
    return [v.strip() for v in value[:count]]
