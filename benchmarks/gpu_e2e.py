"""Issue 14 on a GPU, as one script: what the server adds to model time (H200: under 5 minutes).

1. Writes full-size random-weight checkpoints in the published layouts (same cost as the real
   ones): BiRefNet ``General.safetensors`` and the SDXL Lightning 8-step single file (original
   Stability names; the 4-step name is a link to it, the flow lists both).
2. Times the baselines in this process: the raw BiRefNet forward (fp16, 1024x1024, warm) and
   the diffusers ``StableDiffusionXLPipeline`` on the same weights (fp16, Euler with trailing
   timesteps, 8 steps, cfg 1, VAE decode included), then frees the GPU.
3. Starts the server in DEFAULT mode with its local worker on the GPU and runs, from a client
   polling every 10 ms: warm BiRefNet tasks, warm SDXL tasks, and N BiRefNet tasks created at
   once (back to back; the worker runs ``--slots`` tasks at once, VIX_WORKER_SLOTS). Times are
   the server's own (created_at -> finished_at). ``VIX_COMPILE`` stays off: its warm-up alone
   takes longer than this script may.
4. Prints the stage table of each warm task (the worker's ``VIX_STAGE_LOG``) and the ratios
   against the goals: BiRefNet warm task <= 1.3x the forward, SDXL warm task <= 1.05x the
   pipeline, N tasks <= 1.1x N forwards.

On the device machine (the server's Python dependencies travel as wheels; see gpu_wheels.sh):

    bash benchmarks/gpu_wheels.sh          # here, once: fills .whl/ (git-ignored)
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/gpu_e2e.py

Here, on CPU, every code path with tiny models (a few minutes on 2 cores):

    python benchmarks/gpu_e2e.py --tiny --device cpu --size 256 --warm 2 --batch 3
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from overhead import BUILTIN, Variant, flow_classes, photo_png, server_seconds  # noqa: E402
from PIL import Image  # noqa: E402
from stage_table import ClientTimes, print_table, read_records, task_stages  # noqa: E402

BIREFNET_FLOW = "remove_background_birefnet"
SDXL_FLOW = "sdxl_lighting"
SDXL_FILES = ("sdxl_lightning_8step.safetensors", "sdxl_lightning_4step.safetensors")
PROMPT = {"prompt": "a photo of a cat", "seed": "42"}


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str, repeats: int) -> float:
    """The median seconds of ``fn`` after one warm-up call."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- checkpoints ---------------------------------------------------------------------------------


def write_checkpoints(models: Path, tiny: bool, device: str) -> None:
    from safetensors.torch import save_file

    from visionatrix.engine.nets import birefnet as net
    from visionatrix.testing.tiny_birefnet import write_tiny_birefnet
    from visionatrix.testing.tiny_sdxl import full_configs, tiny_configs, write_sdxl_checkpoint

    start = time.perf_counter()
    birefnet = models / "birefnet" / "General.safetensors"
    if tiny:
        write_tiny_birefnet(birefnet, "general")
    else:
        birefnet.parent.mkdir(parents=True, exist_ok=True)
        with torch.device(device):
            model = net.BiRefNet(net.GENERAL)
        save_file(
            {k: v.to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}, str(birefnet)
        )
        del model
    sdxl = models / "checkpoints" / SDXL_FILES[0]
    write_sdxl_checkpoint(sdxl, tiny_configs() if tiny else full_configs(), device=device)
    (models / "checkpoints" / SDXL_FILES[1]).symlink_to(sdxl.name)
    print(f"checkpoints written in {time.perf_counter() - start:.1f} s ({'tiny' if tiny else 'full size'})")


# --- baselines -----------------------------------------------------------------------------------


def birefnet_forward(models: Path, device: str, photo: bytes, repeats: int) -> float:
    from visionatrix.engine.nets import birefnet as net
    from visionatrix.models.device import choose_precision

    dtype = getattr(torch, choose_precision(device, "auto"))
    model = net.load_birefnet(models / "birefnet" / "General.safetensors", dtype=dtype, device=device)
    image = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"), dtype=np.float32) / 255.0
    rgb = torch.from_numpy(image).permute(2, 0, 1)[None].to(device)
    with torch.inference_mode():
        return timed(lambda: net.predict_alpha(model, rgb, net.INPUT_SIZE), device, repeats)


def sdxl_flow(size: int) -> dict[str, Any]:
    """The built-in SDXL Lightning flow, its empty latent ``size`` pixels square (1024 as published)."""
    flow = json.loads((BUILTIN / f"{SDXL_FLOW}.json").read_text())
    latent = next(n for n in flow.values() if n["class_type"] == "EmptyLatentImage")
    latent["inputs"].update(width=size, height=size)
    return flow  # type: ignore[no-any-return]


def sdxl_pipeline(models: Path, device: str, size: int, repeats: int) -> tuple[float, float]:
    """(pipeline seconds, one UNet step) on the weights the flow loads, as diffusers runs them."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    from visionatrix.engine.nets.sdxl_loader import BUILTIN_DIR, load_checkpoint
    from visionatrix.models.device import choose_precision

    dtype = getattr(torch, choose_precision(device, "auto"))
    parts = load_checkpoint(models / "checkpoints" / SDXL_FILES[0], device, dtype)
    pipe = StableDiffusionXLPipeline(
        vae=parts.vae,
        text_encoder=parts.text_encoder,
        text_encoder_2=parts.text_encoder_2,
        tokenizer=CLIPTokenizer.from_pretrained(BUILTIN_DIR / "tokenizer"),
        tokenizer_2=CLIPTokenizer.from_pretrained(BUILTIN_DIR / "tokenizer_2"),
        unet=parts.unet,
        scheduler=EulerDiscreteScheduler.from_pretrained(
            BUILTIN_DIR / "scheduler", timestep_spacing="trailing"
        ),
    )
    pipe.set_progress_bar_config(disable=True)

    def generate() -> np.ndarray:
        latents = pipe(
            PROMPT["prompt"],
            num_inference_steps=8,
            guidance_scale=1.0,
            height=size,
            width=size,
            output_type="latent",
        ).images
        # the decode as the pipeline does it, in the VAE's own dtype (bf16 on GPUs: fp16 overflows)
        latents = latents.to(parts.vae.dtype) / parts.vae.config.scaling_factor
        pixels = parts.vae.decode(latents).sample
        return pipe.image_processor.postprocess(pixels, output_type="np")

    with torch.inference_mode():
        total = timed(generate, device, repeats)
        sample = torch.randn(1, 4, size // 8, size // 8, device=device, dtype=dtype)
        text = torch.randn(1, 77, parts.unet.config.cross_attention_dim, device=device, dtype=dtype)
        pooled = parts.text_encoder_2.config.projection_dim
        added = {
            "text_embeds": torch.randn(1, pooled, device=device, dtype=dtype),
            "time_ids": torch.tensor([[size, size, 0, 0, size, size]], device=device, dtype=dtype),
        }
        step = timed(lambda: parts.unet(sample, 999, text, added_cond_kwargs=added), device, repeats)
    return total, step


def free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


# --- through the server --------------------------------------------------------------------------


def run_tasks(
    server: Variant, flow: str, png: bytes | None, data: dict[str, str] | None, warm: int
) -> tuple[list[float], dict[int, ClientTimes]]:
    """One cold task (loads the model), then ``warm`` tasks: their created->finished seconds."""
    server.run_polled(flow, png, data)
    seconds, client = [], {}
    for _ in range(warm):
        task_id, times, _polls, task = server.run_polled(flow, png, data)
        seconds.append(server_seconds(task))
        client[task_id] = times
    return seconds, client


def back_to_back(server: Variant, photo: bytes, count: int) -> float:
    """Seconds from the first task's creation to the last one's finish, ``count`` created at once."""
    assert server.http is not None
    ids = [server.create(BIREFNET_FLOW, photo).json()["tasks_ids"][0] for _ in range(count)]
    tasks = []
    for task_id in ids:
        while (task := server.http.get(f"/vapi/tasks/progress/{task_id}").json())["progress"] != 100:
            if task["error"]:
                raise RuntimeError(f"task {task_id} failed: {task['error']}")
            time.sleep(0.01)
        tasks.append(task)
    first = min(t["created_at"] for t in tasks)
    last = max(t["finished_at"] for t in tasks)
    return server_seconds({"created_at": first, "finished_at": last})


def stage_table(server: Variant, flow: str, client: dict[int, ClientTimes]) -> None:
    records = read_records(server.stage_log)
    classes = flow_classes(BUILTIN / f"{flow}.json")
    rows = [task_stages(records[i], classes, t) for i, t in client.items() if i in records]
    if rows:
        print_table(f"Stage table: {flow}", rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", help="cuda (the measurement) or cpu (a code-path check)")
    parser.add_argument("--tiny", action="store_true", help="tiny random models instead of full-size ones")
    parser.add_argument("--warm", type=int, default=5, help="warm tasks per flow")
    parser.add_argument("--batch", type=int, default=10, help="BiRefNet tasks created at once")
    parser.add_argument(
        "--size", type=int, default=1024, help="photo and SDXL image side (1024 as published)"
    )
    parser.add_argument("--slots", type=int, default=2, help="the worker's VIX_WORKER_SLOTS")
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # as the worker sets it
    repeats = 10 if args.device.startswith("cuda") else 2
    photo = photo_png(args.size)
    with tempfile.TemporaryDirectory(prefix="vix-gpu-e2e-") as tmp:
        models = Path(tmp) / "models"
        write_checkpoints(models, args.tiny, args.device)
        forward = birefnet_forward(models, args.device, photo, repeats)
        free(args.device)
        pipeline, unet_step = sdxl_pipeline(models, args.device, args.size, max(2, repeats // 3))
        free(args.device)
        env = {"VIX_DEVICE": args.device, "VIX_WORKER_SLOTS": str(args.slots)}
        server = Variant("gpu", Path(tmp) / "server", None, models, **env)
        try:
            server.start([BUILTIN / f"{BIREFNET_FLOW}.json", sdxl_flow(args.size)])
            bir, bir_client = run_tasks(server, BIREFNET_FLOW, photo, None, args.warm)
            sdxl, sdxl_client = run_tasks(server, SDXL_FLOW, None, PROMPT, max(2, args.warm // 2))
            batch = back_to_back(server, photo, args.batch)
        finally:
            server.stop()
        stage_table(server, BIREFNET_FLOW, bir_client)
        stage_table(server, SDXL_FLOW, sdxl_client)
    name = (
        torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"cpu ({os.cpu_count()} cores)"
    )
    print(f"\n{name}, {'tiny' if args.tiny else 'full-size'} random-weight models, {args.size}x{args.size}")
    print(f"  BiRefNet forward (raw, median)          {forward * 1000:9.1f} ms")
    print(f"  SDXL pipeline, 8 steps (diffusers)      {pipeline * 1000:9.1f} ms")
    print(f"  SDXL UNet step                          {unet_step * 1000:9.1f} ms")
    _ratio("BiRefNet warm task / forward", statistics.median(bir), forward, 1.3)
    _ratio("SDXL warm task / pipeline", statistics.median(sdxl), pipeline, 1.05)
    label = f"{args.batch} BiRefNet tasks / {args.batch} forwards"
    _ratio(f"{label} ({args.slots} slots)", batch, args.batch * forward, 1.1)


def _ratio(label: str, ours: float, base: float, goal: float) -> None:
    verdict = "meets" if ours / base <= goal else "misses"
    print(f"  {label:44} {ours * 1000:9.1f} ms  ratio {ours / base:6.2f}  (goal <= {goal}: {verdict})")


if __name__ == "__main__":
    main()
