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
    """Self-attention of ``x`` (B, s, D), with per-row cached keys/values (B, H, p, hd) prepended."""
    import torch
    import torch.nn.functional as F

    attn = layer.self_attn
    b, s, _ = x.shape
    heads, hd = attn.num_heads, attn.head_dim
    q = attn.q_proj(x).view(b, s, heads, hd).transpose(1, 2)
    k = attn.k_proj(x).view(b, s, heads, hd).transpose(1, 2)
    v = attn.v_proj(x).view(b, s, heads, hd).transpose(1, 2)
    k_all = k if keys is None else torch.cat([keys, k], dim=2)
    v_all = v if values is None else torch.cat([values, v], dim=2)
    out = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask, scale=attn.scale)
    return attn.out_proj(out.transpose(1, 2).reshape(b, s, heads * hd)), k, v


def _block(layer: Any, h: Any, keys: Any | None, values: Any | None, mask: Any) -> tuple[Any, Any, Any]:
    """One pre-norm transformer layer; returns (new hidden, this input's keys, values)."""
    attn_out, k, v = _attend(layer, layer.layer_norm1(h), keys, values, mask)
    h = h + attn_out
    return h + layer.mlp(layer.layer_norm2(h)), k, v


def _padded(rows: Sequence[Sequence[int]], pad_id: int, device: Any) -> Any:
    import torch

    out = torch.full((len(rows), max(len(r) for r in rows)), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(list(row), dtype=torch.long)
    return out.to(device)


def encode_shared_prefixes(model: Any, groups: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]], pad_id: int) -> Any:
    """Projected (unnormalised) text features of ``prefix + suffix`` for every suffix of every
    ``(prefix, suffixes)`` group, in order; ``model`` is a transformers ``CLIPModel``.

    All groups run as one batch (few large tensor ops rather than many small ones): prefixes
    are padded to the longest prefix, and each suffix row attends only to its own group's
    real prefix tokens and, causally, to its own earlier tokens. Every suffix ends with the
    end token, which CLIP pools.
    """
    import torch

    tm = model.text_model
    emb = tm.embeddings
    device = emb.token_embedding.weight.device
    plens = [len(p) for p, _ in groups]
    owner = torch.tensor([g for g, (_, sufs) in enumerate(groups) for _ in sufs], device=device)
    suffixes = [s for _, sufs in groups for s in sufs]
    pre_ids, suf_ids = _padded([p for p, _ in groups], pad_id, device), _padded(suffixes, pad_id, device)
    (_, p_max), (rows, s_max) = pre_ids.shape, suf_ids.shape
    start = torch.tensor(plens, device=device)[owner]
    # positions after a row's end token are padding: clamp them into the table, they are never seen
    suf_pos = (start[:, None] + torch.arange(s_max, device=device)).clamp(max=emb.position_embedding.num_embeddings - 1)
    h_pre = emb.token_embedding(pre_ids) + emb.position_embedding(emb.position_ids[:, :p_max])
    h_suf = emb.token_embedding(suf_ids) + emb.position_embedding(suf_pos)
    causal_pre = torch.ones(p_max, p_max, dtype=torch.bool, device=device).tril()
    sees_prefix = torch.arange(p_max, device=device)[None, :] < start[:, None]  # (rows, p_max)
    causal_suf = torch.ones(s_max, s_max, dtype=torch.bool, device=device).tril()
    mask_suf = torch.cat([sees_prefix[:, None, :].expand(rows, s_max, p_max),
                          causal_suf[None].expand(rows, s_max, s_max)], dim=2)[:, None]
    for layer in tm.encoder.layers:
        new_pre, k_pre, v_pre = _block(layer, h_pre, None, None, causal_pre)
        h_suf, _, _ = _block(layer, h_suf, k_pre[owner], v_pre[owner], mask_suf)
        h_pre = new_pre
    h_suf = tm.final_layer_norm(h_suf)
    last = torch.tensor([len(x) - 1 for x in suffixes], device=device)
    return model.text_projection(h_suf[torch.arange(rows, device=device), last])
