"""The second (warm) task of a flow, end to end through the server and a worker, vs. the raw model call.

A full-size BiRefNet (random weights in the real architecture: the same cost as the published ones)
is written in the real safetensors layout; a real server with one local worker runs the unmodified
Visionatrix flow twice on a 1024x1024 photo. The first task pays the model load; the second should
pay only inference. In the same run the raw call — ``predict_alpha`` on the already loaded model,
in the same precision — is timed. Goal: second task / raw call <= 1.05.

    python benchmarks/warm_task.py [--variant lite|general] [--repeats 2]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from tests.support import Server  # noqa: E402
from visionatrix.client import Client  # noqa: E402
from visionatrix.engine.nets import birefnet as net  # noqa: E402
from visionatrix.models.device import choose_precision  # noqa: E402

FILES = {
    "lite": ("General-Lite.safetensors", "remove_background_birefnet_lite"),
    "general": ("General.safetensors", "remove_background_birefnet"),
}
FLOWS = Path(__file__).resolve().parent.parent / "visionatrix" / "builtin" / "flows"


def _photo() -> bytes:
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((1024, 1024)).save(buffer, "PNG")
    return buffer.getvalue()


def _raw_seconds(path: Path, photo: bytes, repeats: int) -> float:
    dtype = getattr(torch, choose_precision("cpu", "auto"))
    model = net.load_birefnet(path, dtype=dtype, device="cpu")
    image = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"), dtype=np.float32) / 255.0
    rgb = torch.from_numpy(image).permute(2, 0, 1)[None]
    net.predict_alpha(model, rgb, net.INPUT_SIZE)  # warm-up, as the server's first task is
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net.predict_alpha(model, rgb, net.INPUT_SIZE)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _task_seconds(client: Client, flow: str, photo: bytes) -> float:
    """Created → finished as the server recorded it: no client polling in the measurement."""
    result = client.run(flow, files={"input_image": ("photo.png", photo)}, poll_interval=0.5, timeout=900)
    assert result.files, "the task produced its cut-out"
    created = datetime.fromisoformat(result.task["created_at"])
    return (datetime.fromisoformat(result.task["finished_at"]) - created).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", choices=sorted(FILES), default="lite")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    filename, flow = FILES[args.variant]
    photo = _photo()
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        path = models / "birefnet" / filename
        path.parent.mkdir(parents=True)
        cfg = net.GENERAL if args.variant == "general" else net.LITE
        save_file({k: v.contiguous() for k, v in net.BiRefNet(cfg).state_dict().items()}, str(path))
        server = Server(Path(tmp), f"sqlite:///{tmp}/bench.db", MODELS_DIR=str(models))
        server.start()
        try:
            server.install(FLOWS / f"{flow}.json")
            with Client(server.url, timeout=900) as client:
                cold = _task_seconds(client, flow, photo)
                warm = statistics.median(_task_seconds(client, flow, photo) for _ in range(args.repeats))
        finally:
            server.stop()
        raw = _raw_seconds(path, photo, args.repeats)
    print(f"BiRefNet {args.variant}, 1024x1024, precision {choose_precision('cpu', 'auto')}")
    print(f"first task (cold, loads the model): {cold:7.2f} s")
    print(f"warm task, created->finished     : {warm:7.2f} s")
    print(f"raw model call (median)           : {raw:7.2f} s")
    print(f"ratio warm task / raw call        : {warm / raw:7.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()
