#!/usr/bin/env bash
# Regenerates every result folder beside this script (CPU, a few minutes each; LiteMedSAM weights).
# Reruns skip cases already in <folder>/results.jsonl: delete a folder to recompute it.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
$BIN/medseg fetch-data colin27 mni152 nuclei
$BIN/python scripts/make_sample_datasets.py
DATA=$($BIN/python -c "from medseg.data import sample; print(sample.data_root() / 'benchmarks')")
OUT=benchmarks/results
$BIN/medseg benchmark-protocol --protocol box2d --data "$DATA/Nuclei" --out $OUT/box2d_nuclei
$BIN/medseg benchmark-protocol --protocol box2d --data "$DATA/Colin27AAL" --slices 6 --out $OUT/box2d_colin27
$BIN/medseg benchmark-protocol --protocol box2d --data "$DATA/MNI152Brain" --slices 6 --out $OUT/box2d_mni152
$BIN/medseg benchmark-protocol --protocol interactive --data "$DATA/Colin27AAL" --labels 1,2,3,4 --out $OUT/interactive_colin27
$BIN/medseg benchmark-protocol --protocol box3d --data "$DATA/Colin27AAL" --labels 2,3,4 --out $OUT/box3d_colin27
$BIN/medseg benchmark-protocol --protocol sammed3d --data "$DATA/Colin27AAL" --labels 1,2,3,4 --clicks 5 --out $OUT/sammed3d_colin27
