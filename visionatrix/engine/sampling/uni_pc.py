"""UniPC (Zhao et al. 2023): a unified predictor-corrector multistep solver, as ComfyUI runs it.

Data prediction (x0) with the B(h) = h ("bh1", ComfyUI's ``uni_pc``) or B(h) = e^h - 1 ("bh2",
``uni_pc_bh2``) variant, order min(3, steps - 1), lower order on the final steps, no corrector after
the last. It works in variance-preserving coordinates: x_vp = x / sqrt(1 + sigma²), with
alpha = 1 / sqrt(1 + sigma²) and sigma_vp = sigma / sqrt(1 + sigma²). A final sigma of 0 is
replaced by 0.001 (the solver needs a finite log-SNR), so the result keeps a trace of noise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from visionatrix.engine.sampling.solver import Denoiser, SolverRun


def _log_alpha(sigma: Tensor) -> Tensor:
    return 0.5 * torch.log(1 / ((sigma * sigma) + 1))


def _std(sigma: Tensor) -> Tensor:
    return torch.sqrt(1.0 - torch.exp(2.0 * _log_alpha(sigma)))


def _lambda(sigma: Tensor) -> Tensor:
    log_alpha = _log_alpha(sigma)
    return log_alpha - 0.5 * torch.log(1.0 - torch.exp(2.0 * log_alpha))


def _per_sample(v: Tensor, dims: int) -> Tensor:
    return v[(...,) + (None,) * (dims - 1)]


class _UniPC:
    def __init__(self, model: Denoiser, variant: str) -> None:
        self.model = model
        self.variant = variant

    def data_prediction(self, x: Tensor, sigma: Tensor) -> Tensor:
        """x0 from the VP-space ``x``, going through the noise prediction as the original does."""
        dims = x.dim()
        s = sigma.view(sigma.shape[:1] + (1,) * (dims - 1))
        x_ve = x * ((s**2 + 1.0) ** 0.5)
        eps = (x_ve - self.model(x_ve, sigma)) / s
        alpha_t, sigma_t = torch.exp(_log_alpha(sigma)), _std(sigma)
        return (x - _per_sample(sigma_t, dims) * eps) / _per_sample(alpha_t, dims)

    def update(
        self, x: Tensor, models: list[Tensor], ts: list[Tensor], t: Tensor, order: int, use_corrector: bool
    ) -> tuple[Tensor, Tensor | None]:
        dims = x.dim()
        t_prev, model_prev = ts[-1], models[-1]
        lambda_prev, lambda_t = _lambda(t_prev), _lambda(t)
        sigma_prev, sigma_t = _std(t_prev), _std(t)
        alpha_t = torch.exp(_log_alpha(t))
        h = lambda_t - lambda_prev
        rks: list[Tensor | float] = []
        d1s = []
        for i in range(1, order):
            rk = ((_lambda(ts[-(i + 1)]) - lambda_prev) / h)[0]
            rks.append(rk)
            d1s.append((models[-(i + 1)] - model_prev) / rk)
        rks.append(1.0)
        rk_t = torch.tensor(rks, device=x.device)
        hh = -h[0]
        h_phi_1 = torch.expm1(hh)
        b_h = hh if self.variant == "bh1" else torch.expm1(hh)
        rows, b = [], []
        h_phi_k = h_phi_1 / hh - 1
        factorial = 1
        for i in range(1, order + 1):
            rows.append(torch.pow(rk_t, i - 1))
            b.append(h_phi_k * factorial / b_h)
            factorial *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial
        r_matrix = torch.stack(rows)
        b_t = torch.tensor(b, device=x.device)
        d1_stack = torch.stack(d1s, dim=1) if d1s else None
        x_t_ = _per_sample(sigma_t / sigma_prev, dims) * x - _per_sample(alpha_t * h_phi_1, dims) * model_prev
        pred_res: Tensor | float = 0
        if d1_stack is not None:
            rhos_p = (
                torch.tensor([0.5], device=x.device)
                if order == 2
                else torch.linalg.solve(r_matrix[:-1, :-1], b_t[:-1])
            )
            pred_res = torch.einsum("k,bkchw->bchw", rhos_p, d1_stack)
        x_t = x_t_ - _per_sample(alpha_t * b_h, dims) * pred_res
        if not use_corrector:
            return x_t, None
        rhos_c = torch.tensor([0.5], device=x.device) if order == 1 else torch.linalg.solve(r_matrix, b_t)
        model_t = self.data_prediction(x_t, t)
        corr_res: Tensor | float = 0
        if d1_stack is not None:
            corr_res = torch.einsum("k,bkchw->bchw", rhos_c[:-1], d1_stack)
        d1_t = model_t - model_prev
        return x_t_ - _per_sample(alpha_t * b_h, dims) * (corr_res + rhos_c[-1] * d1_t), model_t

    def sample(self, x: Tensor, timesteps: Tensor, order: int, run: SolverRun) -> Tensor:
        steps = len(timesteps) - 1
        models: list[Tensor] = []
        ts: list[Tensor] = []
        for step_index in range(steps):
            if step_index == 0:
                ts = [timesteps[0].expand(x.shape[0])]
                models = [self.data_prediction(x, ts[0])]
            elif step_index < order:
                vec_t = timesteps[step_index].expand(x.shape[0])
                x, model_x = self.update(x, models, ts, vec_t, step_index, use_corrector=True)
                models.append(model_x if model_x is not None else self.data_prediction(x, vec_t))
                ts.append(vec_t)
            else:
                last = step_index + (2 if step_index == steps - 1 else 1)
                for step in range(step_index, last):
                    x = self._final_order_step(x, models, ts, timesteps, step, steps, order)
            run.step(step_index, x, models[-1])
        return x

    def _final_order_step(
        self,
        x: Tensor,
        models: list[Tensor],
        ts: list[Tensor],
        timesteps: Tensor,
        step: int,
        steps: int,
        order: int,
    ) -> Tensor:
        vec_t = timesteps[step].expand(x.shape[0])
        step_order = min(order, steps + 1 - step)
        x, model_x = self.update(x, models, ts, vec_t, step_order, use_corrector=step != steps)
        for i in range(order - 1):
            ts[i] = ts[i + 1]
            models[i] = models[i + 1]
        ts[-1] = vec_t
        if step < steps:
            models[-1] = model_x if model_x is not None else self.data_prediction(x, vec_t)
        return x


def _sample(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun, variant: str) -> Tensor:
    timesteps = sigmas.clone()
    if sigmas[-1] == 0:
        timesteps[-1] = 0.001
    x = x / torch.sqrt(1.0 + timesteps[0] ** 2.0)
    order = min(3, len(timesteps) - 2)
    x = _UniPC(model, variant).sample(x, timesteps, order, run)
    return x / torch.exp(_log_alpha(timesteps[-1]))


def sample_uni_pc(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    return _sample(model, x, sigmas, run, "bh1")


def sample_uni_pc_bh2(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    return _sample(model, x, sigmas, run, "bh2")
