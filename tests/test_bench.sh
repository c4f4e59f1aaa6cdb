#!/usr/bin/env bash
# nnc bench on a small CNN: one table row per kernel of the train step (counted in the
# generated code's phases, independently of bench), the totals, CSV and JSON that parse
# with the same rows, a roofline SVG, and variants (batch sizes, buffer reuse on and off)
# side by side with ratios.
# Run as: bash tests/test_bench.sh NNC
set -u
NNC=$(realpath "$1")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

cat >"$WORK/small.nn" <<'EOF'
import numpy as np
from tensorflow import keras

x = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6],
              [1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]]).reshape(-1, 4, 4, 1)
y = np.array([0, 1])

model = keras.Sequential([
    keras.layers.Conv2D(4, (3, 3), activation='relu', input_shape=(4, 4, 1)),
    keras.layers.MaxPooling2D((2, 2)),
    keras.layers.Flatten(),
    keras.layers.Dense(2, activation='softmax'),
])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.fit(x, y, epochs=1, batch_size=2)
EOF

# The kernels the train step runs: the calls in the three phase functions of the
# normal generated code.
"$NNC" emit "$WORK/small.nn" -o "$WORK/src" || bad "emit"
kernels=$(awk '/^static void nnc_(forward_train|backward|update)\(/{f=1;next} f&&/^}/{f=0} f&&/\(s, [n0]\);/{print $1}' \
  "$WORK/src/model.c" | sed 's/(.*//')
n=$(echo "$kernels" | wc -l)
# (9 since the bias gradients are summed by the weight gradients: fuse_bias_grad.c)
[ "$n" -ge 9 ] && ok || bad "expected at least 9 kernels in the generated step, found $n"
# Normal builds carry no timers.
grep -q 'NNC_TIMED\|nn_profile' "$WORK/src/model.c" && bad "timers in a normal build" || ok

# The table: a row per kernel, in order, then the totals.
if "$NNC" bench "$WORK/small.nn" --steps 3 --batch-size 8 >"$WORK/table" 2>"$WORK/err"; then
  ok
  rows=$(awk 'NR > 2 && $1 != "(outside" {print $1}' "$WORK/table" | head -n "$n")
  [ "$rows" = "$kernels" ] && ok || bad "table rows differ from the step's kernels:"$'\n'"$rows"$'\n'"--"$'\n'"$kernels"
  grep -q '^(outside kernels)' "$WORK/table" && ok || bad "no outside-kernels row"
  grep -qE '^c b8: step [0-9.]+ ms, [0-9]+ samples/s' "$WORK/table" && ok || bad "no step totals"
  grep -qE '^memory: arena [0-9.]+ MiB .* max RSS [0-9.]+ MiB' "$WORK/table" && ok || bad "no memory totals"
  grep -qE '^machine: FMA peak [0-9.]+ GFLOP/s' "$WORK/table" && ok || bad "no machine line"
else
  bad "nnc bench: $(head -5 "$WORK/err")"
fi

# CSV and JSON parse, with a row per kernel; the SVG is well-formed with a point per kernel.
"$NNC" bench "$WORK/small.nn" --steps 3 --batch-size 8 --csv --svg "$WORK/roof.svg" >"$WORK/out.csv" 2>"$WORK/err" &&
  "$NNC" bench "$WORK/small.nn" --steps 3 --batch-size 8,16 --reuse on,off --json >"$WORK/out.json" 2>>"$WORK/err" || bad "csv/json: $(head -5 "$WORK/err")"
python3 - "$WORK" "$n" <<'EOF' && ok || bad "csv/json/svg checks"
import csv, json, sys, xml.etree.ElementTree as ET
work, n = sys.argv[1], int(sys.argv[2])
rows = list(csv.DictReader(open(work + "/out.csv")))
kern = [r for r in rows if r["kernel"] != "(step)"]
assert len(kern) == n, (len(kern), n)
assert all(float(r["median_s"]) > 0 and r["layout"] for r in kern)
assert float([r for r in rows if r["kernel"] == "(step)"][0]["median_s"]) > 0
assert sum(float(r["flops"]) for r in kern) > 0
doc = json.load(open(work + "/out.json"))
assert [v["batch"] for v in doc["variants"]] == [8, 8, 16, 16]
assert [v["name"] for v in doc["variants"]] == ["c b8", "c b8 no-reuse", "c b16", "c b16 no-reuse"]
# Sharing buffers by liveness never makes the arena larger.
assert doc["variants"][0]["arena_bytes"] <= doc["variants"][1]["arena_bytes"]
for v in doc["variants"]:
    assert len(v["kernels"]) == n and v["step_s"] > 0 and v["samples_per_s"] > 0 and v["rss_bytes"] > 0
assert all(k["ratio"] > 0 for k in doc["variants"][1]["kernels"])
assert doc["machine"]["peak_gflops"] > 0 and doc["machine"]["bandwidth_gbs"] > 0
svg = ET.parse(work + "/roof.svg").getroot()
points = [c for c in svg.iter("{http://www.w3.org/2000/svg}circle") if c.find("{http://www.w3.org/2000/svg}title") is not None]
assert len(points) >= n // 2, len(points)   # kernels with FLOPs and bytes
assert svg.find("{http://www.w3.org/2000/svg}polyline") is not None
EOF

# Layouts side by side: the packed variant's kernels have the NHWC one's names (a ratio
# each) and its pack nodes are listed after them; the layout column says which is which.
if "$NNC" bench "$WORK/small.nn" --steps 2 --min-time 0 --batch-size 4 --layout nhwc,packed >"$WORK/lay" 2>"$WORK/err" &&
   "$NNC" bench "$WORK/small.nn" --steps 2 --min-time 0 --batch-size 4 --layout packed --csv >"$WORK/lay.csv" 2>>"$WORK/err"; then
  grep -qE '^c b4 packed: step [0-9.]+ ms' "$WORK/lay" && grep -qE '^conv2d_pack_w +pack_weights +- ' "$WORK/lay" && ok ||
    bad "layout variants: $(cat "$WORK/lay")"
  grep -q ',conv2d_fwd_conv_bias_relu,conv2d,3,4x2x2x4,packed,' "$WORK/lay.csv" && grep -q ',conv2d_pack_w,pack_weights,1,.*,panels,' "$WORK/lay.csv" &&
    ok || bad "layout column: $(cat "$WORK/lay.csv")"
else
  bad "nnc bench --layout: $(head -5 "$WORK/err")"
fi
"$NNC" bench "$WORK/small.nn" --layout nchw >/dev/null 2>"$WORK/err"
[ $? -eq 1 ] && grep -q "expected auto, nhwc, packed or cols" "$WORK/err" && ok || bad "unknown layout"

# Bad input: clear messages, exit 1.
"$NNC" bench "$WORK/small.nn" --target cuda >/dev/null 2>"$WORK/err"
[ $? -eq 1 ] && grep -q "unknown target 'cuda'" "$WORK/err" && ok || bad "unknown target"
"$NNC" bench "$WORK/small.nn" --batch-size 0 >/dev/null 2>"$WORK/err"
[ $? -eq 1 ] && grep -q "batch-size" "$WORK/err" && ok || bad "batch size 0"
"$NNC" bench "$WORK/small.nn" --csv --json >/dev/null 2>"$WORK/err"
[ $? -eq 1 ] && grep -q "choose one" "$WORK/err" && ok || bad "csv and json"

echo "test_bench: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
