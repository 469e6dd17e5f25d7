"""A plainly written implementation of ../shared/REFERENCE_RIG.md: the oracle for r2r's exact mode.

It deliberately keeps the published code's evaluation pattern, wasted work included, so that exact-mode tests
compare two different evaluations of the same math:
- its own DDIM scheduler passed to the SD pipeline constructor (which forces steps_offset=1);
- inversion with classifier-free guidance (g = 7.5) even when both prompts are empty;
- the generation batch [s, z, s, z] with text [E(neg), E(neg), E(src), E(tgt)] (the source's unconditional row
  costs work and is thrown away), the source branch updated and then reset;
- TAC by a simple processor on every attention layer: in self-attention with n >= H*W/layers tokens and for step
  i < int(k * gamma), row 3 (conditional target) takes the Query and Key of row 2 (conditional source);
- one image at a time; both branches decoded.
Written for reading, not speed. Used by tests/test_r2r_exact.py and as the baseline of benchmarks/bench_translate.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, StableDiffusionPipeline


def published_scheduler() -> DDIMScheduler:
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False)


def load_reference_pipe(model_dir, negative_embedding=None, device="cpu") -> StableDiffusionPipeline:
    """The SD pipeline as the published script builds it: from the folder, with its own DDIM scheduler."""
    with warnings.catch_warnings():  # the constructor warns that it forces steps_offset=1: that is the point
        warnings.simplefilter("ignore", FutureWarning)
        pipe = StableDiffusionPipeline.from_pretrained(
            str(model_dir), scheduler=published_scheduler(), safety_checker=None, requires_safety_checker=False
        )
    if negative_embedding is not None:
        pipe.load_textual_inversion(str(negative_embedding))
    return pipe.to(device)


def reference_pipe_from_components(vae, text_encoder, tokenizer, unet) -> StableDiffusionPipeline:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return StableDiffusionPipeline(
            vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=published_scheduler(),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )


class SwapQKProcessor:
    """Plain softmax attention; in self-attention of large layers, row 3 uses row 2's Query and Key when on."""

    def __init__(self, state: dict):
        self.state = state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        is_cross = encoder_hidden_states is not None
        context = encoder_hidden_states if is_cross else hidden_states
        b = hidden_states.shape[0]
        q = attn.to_q(hidden_states)
        k = attn.to_k(context)
        v = attn.to_v(context)
        d = q.shape[-1] // attn.heads
        q = q.view(b, -1, attn.heads, d).transpose(1, 2)
        k = k.view(b, -1, attn.heads, d).transpose(1, 2)
        v = v.view(b, -1, attn.heads, d).transpose(1, 2)
        s = self.state
        if not is_cross and s["on"] and s["step"] < s["swap_steps"] and q.shape[2] >= s["flag"]:
            q = q.clone()
            k = k.clone()
            q[3] = q[2]
            k[3] = k[2]
        out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale)
        out = out.transpose(1, 2).reshape(b, -1, attn.heads * d)
        return attn.to_out[1](attn.to_out[0](out))


@torch.no_grad()
def reference_rig(
    pipe: StableDiffusionPipeline,
    image,
    source_prompt: str = "",
    target_prompt: str = "",
    negative_prompt: str = "",
    strength: float = 0.3,
    steps: int = 50,
    guidance: float = 7.5,
    gamma: float = 0.9,
    layers: int = 256,
    use_tac: bool = True,
    return_source: bool = False,
):
    """Translate one image (PIL / uint8 HWC array). Returns the target as float32 [3, H, W] in [0, 1] (CPU)."""
    device = pipe.device
    unet, vae, tokenizer, text_encoder = pipe.unet, pipe.vae, pipe.tokenizer, pipe.text_encoder

    def embed(prompt):
        prompt = pipe.maybe_convert_prompt([prompt], tokenizer)
        ids = tokenizer(prompt, padding="max_length", max_length=77, return_tensors="pt").input_ids
        return text_encoder(ids.to(device))[0]

    pixels = torch.from_numpy(np.array(image)).float().permute(2, 0, 1)[None] / 255.0
    height, width = pixels.shape[-2:]
    x = (2 * pixels - 1).to(device)
    z0 = vae.encode(x).latent_dist.mean * 0.18215

    scheduler = pipe.scheduler
    scheduler.set_timesteps(steps)
    k = min(int(steps * strength), steps)
    used = scheduler.timesteps[steps - k:]
    delta = scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    alphas = scheduler.alphas_cumprod
    final = scheduler.final_alpha_cumprod

    # Inversion, published order (descending), with CFG.
    inv_text = torch.cat([embed(""), embed(source_prompt)])
    z = z0
    stored = [z0]
    for t in used:
        eps_u, eps_c = unet(torch.cat([z, z]), t, encoder_hidden_states=inv_text).sample.chunk(2)
        eps = eps_u + guidance * (eps_c - eps_u)
        s = min(int(t) - delta, 999)
        a = alphas[s] if s >= 0 else final
        a_next = alphas[int(t)]
        x0 = (z - (1 - a) ** 0.5 * eps) / a ** 0.5
        z = a_next ** 0.5 * x0 + (1 - a_next) ** 0.5 * eps
        stored.append(z)

    # Generation: batch [s, z, s, z], TAC in the conditional half.
    neg, src, tgt = embed(negative_prompt), embed(source_prompt), embed(target_prompt)
    gen_text = torch.cat([neg, neg, src, tgt])
    state = {"on": use_tac, "step": 0, "swap_steps": int(k * gamma), "flag": height * width / layers}
    saved = unet.attn_processors
    unet.set_attn_processor(SwapQKProcessor(state))
    try:
        latents = torch.cat([stored[-1], stored[-1]])  # [source, target]
        for i, t in enumerate(used):
            latents = torch.cat([stored[-1 - i], latents[1:]])
            state["step"] = i
            eps_all = unet(torch.cat([latents, latents]), t, encoder_hidden_states=gen_text).sample
            eps_u, eps_c = eps_all.chunk(2)
            eps = eps_u + guidance * (eps_c - eps_u)
            p = int(t) - delta
            a = alphas[int(t)]
            a_prev = alphas[p] if p > 0 else final
            x0 = (latents - (1 - a) ** 0.5 * eps) / a ** 0.5
            latents = a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps
    finally:
        unet.set_attn_processor(saved)

    images = (vae.decode(latents / 0.18215).sample / 2 + 0.5).clamp(0, 1).float().cpu()
    return (images[1], images[0]) if return_source else images[1]
