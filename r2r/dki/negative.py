"""Negative-domain DKI: textual inversion of a new token (default `<rendered>`) on rendered images.

Why: in RIG the token is the negative prompt of classifier-free guidance, so generation is pushed away from the CG
look it has absorbed (FashionR2R, "negative domain embedding"). The reference code ships no such training.

Only the K new embedding rows are trained: the text encoder's token table is wrapped by `TrainableTokens`, which
answers the new ids from a [K, D] float32 parameter and every other id from the frozen table, so no other row can
move (there is nothing to restore after each step, and AdamW keeps state for K x D numbers instead of the whole
vocabulary). The text encoder and UNet are frozen; gradients reach the vectors through both.

Output: `learned_embeds.safetensors` = {token: tensor [K, D]}, the format `pipe.load_textual_inversion(folder)`
reads (it adds "<tok>", "<tok>_1", ... and expands the prompt), plus the model card and loss curve.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from .errors import DKIError
from .trainer import Components, Denoiser, DKITrainer, TrainResult, cast_module

EMBEDDING_FILE = "learned_embeds.safetensors"  # diffusers' TEXT_INVERSION_NAME_SAFE


def token_names(token: str, num_vectors: int) -> list[str]:
    """The tokenizer entries of a K-vector token, named as diffusers' `load_textual_inversion` names them."""
    return [token] + [f"{token}_{i}" for i in range(1, num_vectors)]


def expand_token(token: str, num_vectors: int) -> str:
    """What diffusers' `maybe_convert_prompt` turns the token into inside a prompt."""
    return " ".join(token_names(token, num_vectors))


class TrainableTokens(torch.nn.Module):
    """A token embedding whose rows for `token_ids` come from a trainable [K, D] parameter; all others are frozen."""

    def __init__(self, base: torch.nn.Embedding, token_ids: list[int], init: torch.Tensor):
        super().__init__()
        self.base = base.requires_grad_(False)
        slot = torch.full((base.num_embeddings,), -1, dtype=torch.long)
        slot[torch.as_tensor(token_ids)] = torch.arange(len(token_ids))
        self.register_buffer("slot", slot, persistent=False)
        self.vectors = torch.nn.Parameter(init.detach().to(torch.float32).clone())

    @property
    def weight(self) -> torch.Tensor:  # code that inspects `get_input_embeddings().weight` still works
        return self.base.weight

    @property
    def num_embeddings(self) -> int:
        return self.base.num_embeddings

    @property
    def embedding_dim(self) -> int:
        return self.base.embedding_dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.base(ids)
        s = self.slot[ids]
        new = self.vectors[s.clamp(min=0)].to(out.dtype)
        return torch.where((s >= 0).unsqueeze(-1), new, out)


def read_embedding(path: str | Path, width: int | None = None) -> tuple[str, torch.Tensor]:
    """(token, [K, D]) of a `{token: tensor}` safetensors file, checked as translation checks it (r2r/models/check.py:
    never a pickle, complete, floating point, finite, not empty); errors name the file and the width expected."""
    from ..models import ModelFileError
    from ..models import read_embedding as read_checked

    path = Path(path)
    if not path.is_file():
        raise DKIError(f"embedding file not found: {path}")
    try:
        return read_checked(path, width)
    except ModelFileError as e:
        raise DKIError(str(e)) from None


def initial_vectors(tokenizer, table: torch.Tensor, init_token: str, num_vectors: int) -> torch.Tensor:
    """[K, D]: the embedding of `init_token` (the mean of its tokens if it is several) repeated K times."""
    ids = tokenizer(init_token, add_special_tokens=False).input_ids
    if not ids:
        raise DKIError(f"--init-token {init_token!r} tokenizes to nothing; pass a word such as 'rendered'")
    return table[torch.as_tensor(ids)].float().mean(0, keepdim=True).repeat(num_vectors, 1)


def add_trainable_tokens(tokenizer, text_encoder, token: str, num_vectors: int, init: torch.Tensor,
                         where: str = "the model") -> TrainableTokens:
    """Add the K token names to the tokenizer, size the table, and wrap it; returns the wrapper."""
    names = token_names(token, num_vectors)
    vocab = tokenizer.get_vocab()
    clash = [n for n in names if n in vocab]
    if clash:
        raise DKIError(f"token {clash[0]!r} is already in the tokenizer vocabulary of {where}; choose another --token "
                       f"(e.g. '<rendered-2>')")
    added = tokenizer.add_tokens(names)
    ids = tokenizer.convert_tokens_to_ids(names)
    if added != len(names) or len(set(ids)) != len(names):
        raise DKIError(f"the tokenizer did not add {names} as {len(names)} new tokens (added {added})")
    if max(ids) >= text_encoder.get_input_embeddings().num_embeddings:
        text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # rows set below
    base = text_encoder.get_input_embeddings()
    with torch.no_grad():
        base.weight[torch.as_tensor(ids)] = init.to(base.weight.dtype)
    text_encoder.requires_grad_(False)
    wrapper = TrainableTokens(base, ids, init)
    text_encoder.set_input_embeddings(wrapper)
    return wrapper


class NegativeTrainer(DKITrainer):
    """`NegativeTrainer(RunConfig(model, out, DataConfig(renders), TrainConfig(...), NegativeConfig(...))).fit()`."""

    method = "negative"

    def build(self, c: Components) -> tuple[Denoiser, list[torch.nn.Parameter]]:
        m = self.run.method
        te, tok = c.text_encoder, c.tokenizer
        width = te.get_input_embeddings().embedding_dim
        if m.init_embedding:
            _, init = read_embedding(m.init_embedding, width)
            if init.shape[0] != m.num_vectors:
                raise DKIError(f"{m.init_embedding}: has {init.shape[0]} vector(s); pass --num-vectors "
                               f"{init.shape[0]} to start from it")
        else:
            init = initial_vectors(tok, te.get_input_embeddings().weight.detach(), m.init_token, m.num_vectors)
        self.tokens = add_trainable_tokens(tok, te, m.token, m.num_vectors, init, where=self.run.model)
        te.eval()
        # Frozen UNet in the compute dtype (as the diffusers example); the text encoder stays float32 (tiny cost,
        # exact layer norms) and runs under autocast.
        cast_module(c.unet.requires_grad_(False), self.weight_dtype)
        prompts = [t.replace("{}", expand_token(m.token, m.num_vectors)) for t in m.templates]
        self.prompts = prompts
        self.prompt_ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True,
                              return_tensors="pt").input_ids.to(self.device)
        return Denoiser(c.unet, te), [self.tokens.vectors]

    def conditioning(self, batch, generator: torch.Generator) -> dict:
        b = batch.latents.shape[0]
        idx = torch.randint(0, len(self.prompt_ids), (b,), generator=generator, device=self.device)
        return {"input_ids": self.prompt_ids[idx]}

    def learned_vectors(self) -> torch.Tensor:
        """[K, D] float32 on the CPU: the trained rows."""
        return self.tokens.vectors.detach().float().cpu().contiguous()

    def artifact_names(self) -> list[str]:
        return [EMBEDDING_FILE]

    def export(self) -> list[Path]:
        from synfashion.fs.atomic import atomic_path

        path = self.out / EMBEDDING_FILE
        with atomic_path(path) as tmp:
            save_file({self.run.method.token: self.learned_vectors()}, str(tmp))
        return [path]

    def card(self, result: TrainResult) -> Path | None:
        from cards.model_card import DKICardInfo

        m = self.run.method
        info = DKICardInfo(
            method="negative-embedding", artifact=EMBEDDING_FILE, **self.card_fields(result),
            token=m.token, num_vectors=m.num_vectors, init_token=None if m.init_embedding else m.init_token,
            prompts=tuple(t.replace("{}", m.token) for t in m.templates),
        )
        return self.write_card(info)
