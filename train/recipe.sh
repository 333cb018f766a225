#!/usr/bin/env bash
# odqa's Korean reader, end to end: export → train → artifact → parity → dev scores.
# Run from the repository root with ../shared beside it. Everything lands in
# train/work/ (git-ignored) except the artifact, which replaces
# models/odqa-reader-ko/reader-delta.safetensors when RECIPE_INSTALL=1.
#
#   bash train/recipe.sh                 # v1's CPU configuration (about 1 h 10 min on 2 cores)
#   STEPS=3000 MIX= bash train/recipe.sh # all exported windows, several passes: a GPU run
#   INIT=models/odqa-reader-ko PRETRAIN_MIN=15 BUDGET_MIN=15 bash train/recipe.sh
#                                        # continue a reader: 15 min of span-selection
#                                        # pre-training, then 15 min of fine-tuning
# An interrupted training step resumes from its checkpoint when run again.
# The default reader v2 was made from v1 (git show 8c8474b:models/odqa-reader-ko/…)
# with the exact commands in bench/README.md, "Reader v2".
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-train/work}
SHARED=${SHARED:-../shared}
MIX=${MIX-paragraph_no_answer=700,article_negative=500,retrieved_negative=500,relation_answer=2500,relation_wrong=400,no_relation=400}
STEPS=${STEPS:-0}
LR=${LR:-1e-4}
DEVICE=${DEVICE:-cpu}
INIT=${INIT:-}                 # a reader to start from (default: a fresh head on the base model)
PRETRAIN_MIN=${PRETRAIN_MIN:-0} # minutes of span-selection pre-training before fine-tuning
BUDGET_MIN=${BUDGET_MIN:-0}     # minutes of fine-tuning (0: STEPS, or one pass)
PRECISION=${PRECISION:-auto}    # bf16 autocast where the CPU has AMX/AVX512_BF16, else fp32
ODQA=${ODQA:-target/release/odqa}
mkdir -p "$WORK"

[ -x "$ODQA" ] || cargo build --release -p odqa
[ -f index/kowiki-2020-10k/odqa-manifest.json ] || "$ODQA" index build --corpus kowiki-2020-10k
BASE_DIR=$("$ODQA" models fetch | tail -1)

# 1. Windows labelled by odqa's own tokenizer and windowing (seeded split).
"$ODQA" train export --korquad "$SHARED/data/korquad-early-dev-repaired.json" \
    --klue-re "$SHARED/data/klue-re-train.jsonl" --negatives-index index/kowiki-2020-10k \
    --relation-templates "${RELATION_TEMPLATES:-one}" \
    --relation-wrong-per-example "${RELATION_WRONG_PER_EXAMPLE:-1}" \
    --out "$WORK/export"

# 2. PyTorch side: a venv and the base model as a Hugging Face directory.
if [ ! -x "$WORK/venv/bin/python" ]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install -q -r train/requirements.txt
fi
PY="$WORK/venv/bin/python"
[ -f "$WORK/me5s/model.safetensors" ] || "$PY" "$SHARED/tools/torch-anchor/convert_e5s1.py" \
    --bin "$BASE_DIR/e5-small-q4.bin" --tokenizer "$BASE_DIR/tokenizer.json" --out "$WORK/me5s"

resume() { [ -f "$1/checkpoint.pt" ] && echo --resume || true; }
init() { [ -n "$1" ] && echo --init "$1" || true; }

# 3a. Optional stage 1: span-selection pre-training on the corpus (recurring
# spans and cloze questions over BM25-retrieved passages).
if [ "$PRETRAIN_MIN" != 0 ]; then
    [ -f "$WORK/pretrain/manifest.json" ] || "$ODQA" train pretrain-data --corpus kowiki-2020-10k \
        --index index/kowiki-2020-10k --max-examples "${PRETRAIN_EXAMPLES:-40000}" --out "$WORK/pretrain"
    if [ ! -f "$WORK/stage1/reader-delta.safetensors" ]; then
        # shellcheck disable=SC2046
        "$PY" train/train_reader.py --export "$WORK/pretrain" --base "$WORK/me5s" --out "$WORK/stage1" \
            --budget-min "$PRETRAIN_MIN" --lr "$LR" --device "$DEVICE" --precision "$PRECISION" \
            --eval-every 240 --dev-limit 300 $(init "$INIT") $(resume "$WORK/stage1")
    fi
    INIT="$WORK/stage1"
fi

# 3b. Fine-tune (fixed seed; hyper-parameters and learning curve in $WORK/run).
if [ "$BUDGET_MIN" != 0 ]; then SIZE=(--budget-min "$BUDGET_MIN"); else SIZE=(--steps "$STEPS"); fi
# shellcheck disable=SC2046
"$PY" train/train_reader.py --export "$WORK/export" --base "$WORK/me5s" --out "$WORK/run" \
    --mix "$MIX" "${SIZE[@]}" --lr "$LR" --device "$DEVICE" --precision "$PRECISION" \
    --eval-every 240 --dev-limit 300 $(init "$INIT") $(resume "$WORK/run")

# 4. Install, check parity with candle, score the held-out articles.
if [ "${RECIPE_INSTALL:-0}" = 1 ]; then
    cp "$WORK/run/reader-delta.safetensors" models/odqa-reader-ko/
    cp "$WORK/run/learning-curve.jsonl" models/odqa-reader-ko/
fi
READER=${READER:-models/odqa-reader-ko}
"$ODQA" train parity --export "$WORK/export" --reference "$WORK/run" --reader "$READER"
"$ODQA" bench mrc --data "$WORK/export/korquad-dev.json" --reader "$READER" --label korquad-dev-split
