"""The overhead benchmark's trivial job as a Cog predictor: invert a PNG and scale it by 1.5.

Run by Replicate's own server (``python -m cog.server.http`` with
``COG_PREDICT_TYPE_STUB=predict.py:Predictor``); a synchronous ``POST /predictions`` answers
with the result PNG as a data URI.
"""

from __future__ import annotations

import tempfile

from cog import BasePredictor, Input, Path
from PIL import Image, ImageOps


class Predictor(BasePredictor):
    def predict(self, image: Path = Input(description="a PNG")) -> Path:
        with Image.open(image) as opened:
            rgb = opened.convert("RGB")
        scaled = ImageOps.invert(rgb).resize(
            (round(rgb.width * 1.5), round(rgb.height * 1.5)), Image.Resampling.BILINEAR
        )
        out = Path(tempfile.mkdtemp()) / "out.png"
        scaled.save(out, compress_level=4)
        return out
