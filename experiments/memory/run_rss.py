"""Peak memory of `hypertok encode FILE` and `hypertok prepare` against input size (issue 13).

Both commands stream: memory should stay flat as the input grows. Each point runs the
command in a fresh process and reads its peak RSS (``ru_maxrss`` of the child). Inputs are
cut from the modern corpus (``../shared/corpora/modern/*.xz``, read with lzma) into a
scratch folder (``--work``, default a temporary folder; never the repository). The
tokenizer is built from the corpus' dev file, and ``prepare`` uses a 2-layer random
Mistral with a SentencePiece model trained on the same file (its weights do not matter:
prepare only reads the tokenizer).

    python experiments/memory/run_rss.py                       # writes experiments/memory/results.json
    python experiments/memory/run_rss.py --sizes-mb 10 50 --src /path/to/other/checkout --out other.json

``--src`` runs another checkout of hypertok (e.g. the code before issue 13) for comparison.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CORPUS = REPO.parent / "shared" / "corpora" / "modern"


def make_input(path: Path, mb: float) -> Path:
    """``mb`` megabytes of UTF-8 text cut at a line end, from the modern train files (repeated if needed)."""
    if path.is_file():
        return path
    want = int(mb * 1e6)
    files = sorted(CORPUS.glob("ru-modern-train-*.txt.xz"))
    if not files:
        sys.exit(f"no modern corpus at {CORPUS}")
    written, part = 0, path.with_name(path.name + ".part")  # renamed when whole: a killed run leaves no short input
    with open(part, "wb") as out:
        while written < want:
            for f in files:
                with lzma.open(f, "rb") as src:
                    for line in src:
                        out.write(line)
                        written += len(line)
                        if written >= want:
                            break
                if written >= want:
                    break
    os.replace(part, path)
    return path


def make_one_line(path: Path, mb: float, spaces: bool = False) -> Path:
    """One line of ``mb`` megabytes: modern text with its newlines made spaces, or only spaces."""
    if not path.is_file():
        if spaces:
            data = b" " * int(mb * 1e6)
        else:  # the same text as encode's input of this size
            block = make_input(path.with_name(f"in{mb:g}mb.txt"), mb).read_bytes().replace(b"\n", b" ")
            data = block[:int(mb * 1e6)].decode("utf-8", "ignore").encode("utf-8")
        part = path.with_name(path.name + ".part")
        part.write_bytes(data)
        os.replace(part, path)
    return path


def peak_rss(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, exit code) of ``cmd`` run in a fresh child."""
    probe = ("import resource, subprocess, sys, time; t = time.time(); "
             "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.time() - t, rc)")
    # cwd: `python -c` puts the working folder first on sys.path, so run where no hypertok is
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, env=env, check=True,
                         cwd=cwd)
    kb, secs, rc = out.stdout.split()
    return int(kb) / 1024, float(secs), int(rc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes-mb", type=float, nargs="*", default=[10, 50, 200])
    ap.add_argument("--prepare-sizes-mb", type=float, nargs="*", default=[10, 50, 200])
    ap.add_argument("--one-line-mb", type=float, nargs="*", default=[],
                    help="also: encode one line of N MB, and build from one line of N MB of spaces (issue 24 item 9)")
    ap.add_argument("--eval-chars", type=int, default=0,
                    help="also: hypertok eval of a tiny 32k-row base on this many characters, with the logits "
                         "chunks capped (now) and uncapped (8 192 tokens, before issue 24 item 16)")
    ap.add_argument("--vocab-size", type=int, default=16000)
    ap.add_argument("--src", default=str(REPO), help="checkout of hypertok to run (default: this one)")
    ap.add_argument("--work", default=None, help="scratch folder for inputs and outputs (default: a temporary one)")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="hypertok-rss-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": args.src, "TQDM_DISABLE": "1"}
    hypertok = [sys.executable, "-c", "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'Editable' not in "
                "getattr(f, '__name__', type(f).__name__)]; from hypertok.cli import main; sys.exit(main())"]

    dev = work / "dev.txt"
    if not dev.is_file():
        dev.write_bytes(lzma.open(CORPUS / "ru-modern-dev.txt.xz").read())
    tok = work / f"tok{args.vocab_size}"
    if not tok.is_dir():
        subprocess.run([*hypertok, "build", "--corpus", str(dev), "--vocab-size", str(args.vocab_size),
                        "--mode", "word", "--out", str(tok)], env=env, check=True, stdout=subprocess.DEVNULL, cwd=work)
    base = work / "base"
    if not (base / "tokenizer.model").is_file():
        code = (
            "import sys, sentencepiece as spm, torch\n"
            "from transformers import MistralConfig, MistralForCausalLM\n"
            "d, dev = sys.argv[1], sys.argv[2]\n"
            "spm.SentencePieceTrainer.train(input=dev, model_prefix=d + '/sp', vocab_size=2000, model_type='bpe', "
            "byte_fallback=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)\n"
            "torch.manual_seed(0)\n"
            "cfg = MistralConfig(vocab_size=2000, hidden_size=32, intermediate_size=64, num_hidden_layers=2, "
            "num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)\n"
            "MistralForCausalLM(cfg).save_pretrained(d)\n"
            "import shutil; shutil.copy(d + '/sp.model', d + '/tokenizer.model')\n")
        base.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-c", code, str(base), str(dev)], check=True)

    points = []
    for mb in sorted(set(args.sizes_mb) | set(args.prepare_sizes_mb)):
        text = make_input(work / f"in{mb:g}mb.txt", mb)
        size = text.stat().st_size
        if mb in args.sizes_mb:
            rss, secs, rc = peak_rss([*hypertok, "encode", str(tok), str(text)], env, work)
            points.append({"command": "encode", "input_mb": size / 1e6, "peak_rss_mb": rss, "seconds": secs, "rc": rc})
            print(points[-1], flush=True)
        if mb in args.prepare_sizes_mb:
            out = work / f"data{mb:g}"
            for f in (out.with_suffix(".bin"), out.with_suffix(".json")):
                f.unlink(missing_ok=True)
            rss, secs, rc = peak_rss([*hypertok, "prepare", "--base", str(base), "--tokenizer", str(tok),
                                      "--strategy", "extend", "--text", str(text), "--out", str(out)], env, work)
            points.append({"command": "prepare", "input_mb": size / 1e6, "peak_rss_mb": rss, "seconds": secs,
                           "rc": rc})
            print(points[-1], flush=True)
    for mb in args.one_line_mb:
        line = make_one_line(work / f"oneline{mb:g}mb.txt", mb)
        rss, secs, rc = peak_rss([*hypertok, "encode", str(tok), str(line)], env, work)
        points.append({"command": "encode one line", "input_mb": line.stat().st_size / 1e6, "peak_rss_mb": rss,
                       "seconds": secs, "rc": rc})
        print(points[-1], flush=True)
        spaces = make_one_line(work / f"spaces{mb:g}mb.txt", mb, spaces=True)
        rss, secs, rc = peak_rss([*hypertok, "build", "--corpus", str(spaces), "--vocab-size", "1000",
                                  "--out", str(work / f"spaces{mb:g}-tok")], env, work)
        points.append({"command": "build from one line of spaces (refused: rc 2)", "input_mb": mb, "peak_rss_mb": rss,
                       "seconds": secs, "rc": rc})
        print(points[-1], flush=True)
    if args.eval_chars:
        tiny = work / "tiny-base"
        if not (tiny / "config.json").is_file():
            subprocess.run([*hypertok[:2], hypertok[2].replace("from hypertok.cli import main; sys.exit(main())",
                            "from hypertok.adapt.tiny import main; sys.exit(main())"), "--out", str(tiny)],
                           env=env, check=True, stdout=subprocess.DEVNULL, cwd=work)
        text = work / f"eval{args.eval_chars}.txt"
        text.write_text(dev.read_text(encoding="utf-8")[:args.eval_chars], encoding="utf-8")
        uncapped = [*hypertok[:2], hypertok[2].replace(
            "from hypertok.cli import main;",
            "import importlib; importlib.import_module('hypertok.adapt.evaluate').LOGITS_BYTES = 1 << 62; "
            "from hypertok.cli import main;")]
        for label, cmd in (("eval", hypertok), ("eval, logits chunks uncapped", uncapped)):
            rss, secs, rc = peak_rss([*cmd, "eval", "--base", str(tiny), "--text", str(text), "--prompts", "1",
                                      "--gen-tokens", "8", "--repeats", "1", "--device", "cpu"], env, work)
            points.append({"command": label, "input_mb": text.stat().st_size / 1e6, "peak_rss_mb": rss,
                           "seconds": secs, "rc": rc})
            print(points[-1], flush=True)
    result = {
        "what": "peak RSS of hypertok commands (encode, prepare, and with the options encode of one line, build "
                "from one line of spaces, eval) against input size",
        "command": "python experiments/memory/run_rss.py " + " ".join(sys.argv[1:]),
        "src": "this checkout" if Path(args.src).resolve() == REPO else args.src, "vocab_size": args.vocab_size, "corpus": "modern (ru-modern-train-*.txt.xz, repeated)",
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d"),
        "points": points,
    }
    part = Path(args.out + ".part")
    part.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(part, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
