"""The closest honest stand-in for Cog where Cog cannot be installed: a minimal synchronous
FastAPI prediction server doing the same job (invert a PNG, scale it by 1.5, answer a data URI).

    python -m uvicorn sync_server:app --port P   (from this folder)
"""

from __future__ import annotations

import base64
import io

from fastapi import FastAPI
from PIL import Image, ImageOps

app = FastAPI()


@app.post("/predictions")
def predict(body: dict) -> dict:  # type: ignore[type-arg]
    data = base64.b64decode(body["input"]["image"].split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as opened:
        rgb = opened.convert("RGB")
    scaled = ImageOps.invert(rgb).resize(
        (round(rgb.width * 1.5), round(rgb.height * 1.5)), Image.Resampling.BILINEAR
    )
    out = io.BytesIO()
    scaled.save(out, "PNG", compress_level=4)
    return {
        "status": "succeeded",
        "output": "data:image/png;base64," + base64.b64encode(out.getvalue()).decode(),
    }


@app.get("/health-check")
def health() -> dict:  # type: ignore[type-arg]
    return {"status": "READY"}
