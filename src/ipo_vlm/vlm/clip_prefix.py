"""Exact shared-prefix encoding for CLIP's causal text transformer.

The prompts of one template differ only from the class name on: ``<sot> a photo of a`` is the
same for all classes. Under CLIP's causal mask a token's hidden states depend only on the
tokens before it, so the shared prefix is run through the transformer once, and each prompt's
remaining tokens attend to the prefix's cached keys and values. The result equals encoding
every prompt in full (up to float rounding); the cost is the suffix tokens only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: a group shares at least <sot> plus this many tokens, else sharing is not worth a group
MIN_SHARED_TOKENS = 3
#: a group this large stops absorbing prompts that would shorten its shared prefix
STABLE_GROUP = 8


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def prefix_groups(ids: Sequence[Sequence[int]], max_batch: int) -> tuple[list[tuple[int, list[int]]], list[int]]:
    """Split prompts into (shared prefix length, indices) groups plus leftovers.

    Prompts are visited in token order, so the prompts of one template (and of templates with
    a common start) are neighbours. Every prompt keeps at least its last token (the end token
    that CLIP pools) outside the prefix. Groups of fewer than 4 prompts become leftovers, for
    the plain length-sorted path.
    """
    order = sorted(range(len(ids)), key=lambda i: list(ids[i]))
    groups: list[tuple[int, list[int]]] = []
    cur: list[int] = []
    plen = 0
    for i in order:
        if cur:
            common = min(plen, _common_prefix(ids[cur[0]], ids[i]), len(ids[i]) - 1)
            shrinks = common < plen and len(cur) >= STABLE_GROUP
            if len(cur) < max_batch and not shrinks and common >= MIN_SHARED_TOKENS:
                cur.append(i)
                plen = common
                continue
            groups.append((plen, cur))
        cur, plen = [i], len(ids[i]) - 1
    if cur:
        groups.append((plen, cur))
    leftovers = [i for p, g in groups if len(g) < 4 or p < MIN_SHARED_TOKENS for i in g]
    return [(p, g) for p, g in groups if len(g) >= 4 and p >= MIN_SHARED_TOKENS], leftovers


def _attend(layer: Any, x: Any, keys: Any | None, values: Any | None, mask: Any) -> tuple[Any, Any, Any]:
    """Self-attention of ``x`` (B, s, D) with optional cached keys/values prepended."""
    import torch.nn.functional as F

    attn = layer.self_attn
    b, s, _ = x.shape
    heads, hd = attn.num_heads, attn.head_dim
    q = attn.q_proj(x).view(b, s, heads, hd).transpose(1, 2)
    k = attn.k_proj(x).view(b, s, heads, hd).transpose(1, 2)
    v = attn.v_proj(x).view(b, s, heads, hd).transpose(1, 2)
    k_all = k if keys is None else _cat(keys.expand(b, -1, -1, -1), k)
    v_all = v if values is None else _cat(values.expand(b, -1, -1, -1), v)
    out = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask, scale=attn.scale)
    return attn.out_proj(out.transpose(1, 2).reshape(b, s, heads * hd)), k, v


def _cat(a: Any, b: Any) -> Any:
    import torch

    return torch.cat([a, b], dim=2)


def _block(layer: Any, h: Any, keys: Any | None, values: Any | None, mask: Any) -> tuple[Any, Any, Any]:
    """One pre-norm transformer layer; returns (new hidden, this input's keys, values)."""
    attn_out, k, v = _attend(layer, layer.layer_norm1(h), keys, values, mask)
    h = h + attn_out
    return h + layer.mlp(layer.layer_norm2(h)), k, v


def encode_shared_prefix(model: Any, prefix: Sequence[int], suffixes: Sequence[Sequence[int]], pad_id: int) -> Any:
    """Projected (unnormalised) text features of ``prefix + suffix`` for each suffix.

    ``model`` is a transformers ``CLIPModel``; every suffix ends with the end token.
    """
    import torch

    tm = model.text_model
    emb = tm.embeddings
    p, s, b = len(prefix), max(len(x) for x in suffixes), len(suffixes)
    device = emb.token_embedding.weight.device
    pre_ids = torch.tensor([list(prefix)], dtype=torch.long, device=device)
    suf_ids = torch.full((b, s), pad_id, dtype=torch.long, device=device)
    for r, row in enumerate(suffixes):
        suf_ids[r, : len(row)] = torch.tensor(list(row), dtype=torch.long)
    positions = emb.position_ids[:, : p + s]
    h_pre = emb.token_embedding(pre_ids) + emb.position_embedding(positions[:, :p])
    h_suf = emb.token_embedding(suf_ids) + emb.position_embedding(positions[:, p:])
    causal_pre = torch.ones(p, p, dtype=torch.bool, device=device).tril()
    # suffix token i sees the whole prefix and suffix tokens 0..i
    causal_suf = torch.cat([torch.ones(s, p, dtype=torch.bool, device=device),
                            torch.ones(s, s, dtype=torch.bool, device=device).tril()], dim=1)
    for layer in tm.encoder.layers:
        new_pre, k_pre, v_pre = _block(layer, h_pre, None, None, causal_pre)
        h_suf, _, _ = _block(layer, h_suf, k_pre, v_pre, causal_suf)
        h_pre = new_pre
    h_suf = tm.final_layer_norm(h_suf)
    last = torch.tensor([len(x) - 1 for x in suffixes], device=device)
    pooled = h_suf[torch.arange(b, device=device), last]
    return model.text_projection(pooled)
