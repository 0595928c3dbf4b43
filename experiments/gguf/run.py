"""Issue 22: a HyperTok model in llama.cpp. Gemma 3 270M (imported from its GGUF) and its HyperTok
adaptation, each exported with ``hypertok export-gguf`` and run in llama.cpp (llama-cpp-python) on
this machine's CPU.

For each quantisation (f16, q8_0, q4_0 by the gguf package; q4_k_m by llama.cpp's quantiser):

1. **file size** of the base and the HyperTok GGUF;
2. **ids**: llama.cpp's ``tokenize`` against the model's own tokenizer (HyperTok's
   ``AdaptedTokenizer`` for the HyperTok file, the imported SentencePiece model for the base) on
   every line of ruslit dev and modern dev; each differing line listed with its cause;
3. **bits/char** of the same windows (lines joined up to ``--window-chars`` characters, bos first)
   through llama.cpp, against transformers on the float32 folder: llama.cpp reading the model's own
   ids, and llama.cpp reading its own segmentation;
4. **logits**: the largest absolute difference from transformers per position (f32 and f16 files);
5. **generation speed**: greedy decoding of ``--gen-tokens`` tokens after each of the prompts, base
   and HyperTok interleaved in ``--repeats`` rounds after a warm-up, on ``--threads`` threads.
   tokens/s is measured; chars/s is tokens/s times the model's characters per token on the dev
   texts (the rate at which it writes text like the dev texts; an untrained head's own output is
   no measure of that), and the generated text's own chars/s is recorded beside it. Ratios are
   medians of per-round ratios.

    python experiments/gguf/run.py --base .data/realmodel/gemma-f32 --merged .data/gguf/merged64k \\
        --work .data/gguf/files --out experiments/gguf

Writes ``results.json`` and ``speed.png`` into ``--out``; GGUF files go to ``--work`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import lzma
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"
PROMPTS = ["Москва — столица России, и", "В этой статье мы расскажем, как настроить",
           "Старик долго смотрел на море и думал о том, что", "Для установки пакета выполните команду"]


def dev_lines(name: str) -> list[str]:
    if name == "ruslit":
        text = (CORPORA / "ruslit" / "dev.txt").read_text(encoding="utf-8")
    else:
        with lzma.open(CORPORA / "modern" / "ru-modern-dev.txt.xz", "rt", encoding="utf-8") as f:
            text = f.read()
    return [line for line in text.split("\n") if line]


def windows(lines: list[str], size: int, total: int) -> list[str]:
    """Consecutive lines joined with newlines into windows of about ``size`` characters, ``total`` in all."""
    out, cur, n = [], [], 0
    for line in lines:
        cur.append(line)
        if sum(map(len, cur)) + len(cur) - 1 >= size:
            out.append("\n".join(cur))
            n += len(out[-1])
            cur = []
            if n >= total:
                break
    return out


class Models:
    """The two models' tokenizers (ids as the model reads them) and transformers models."""

    def __init__(self, base: Path, merged: Path):
        from hypertok.registry import AdaptedTokenizer, BaseTokenizer, find_base

        self.tok = {"base": BaseTokenizer(find_base(base)), "hypertok": AdaptedTokenizer.load(merged)}
        self.folder = {"base": base, "hypertok": merged}
        self.bos = {n: t.bos_id for n, t in self.tok.items()}

    def ids(self, name: str, text: str) -> list[int]:
        return [self.bos[name]] + self.tok[name].encode(text)


def cause(line: str, singles: set[str]) -> str:
    if any(c not in singles for c in line):
        return "a character no piece spells (llama.cpp: <unk>; HyperTok: byte pieces)"
    if "\u2581" in line:
        return "U+2581 read as a space by llama.cpp"
    return "other"


def id_agreement(llm, tok, lines: list[str], singles: set[str] | None) -> dict:
    diff = []
    for i, line in enumerate(lines):
        theirs = llm.tokenize(line.encode("utf-8"), add_bos=False, special=False)
        if theirs != tok.encode(line):
            diff.append({"line": i, "text": line[:120], "cause": cause(line, singles) if singles else "other"})
    return {"lines": len(lines), "differ": len(diff), "agree": 1 - len(diff) / len(lines), "differences": diff[:50]}


def logprobs_llama(llm, ids: list[int]):
    """Natural-log probabilities of ids[1:] given the prefix, through llama.cpp (logits_all)."""
    import numpy as np

    llm.reset()
    llm.eval(ids)
    scores = np.array(llm.scores[:len(ids)], dtype=np.float32)
    s = scores[:-1] - scores[:-1].max(axis=1, keepdims=True)
    lse = np.log(np.exp(s).sum(axis=1, dtype=np.float64))
    return s[np.arange(len(ids) - 1), ids[1:]] - lse, scores


def logits_torch(model, ids: list[int]):
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float()


def nats_torch(model, ids: list[int]) -> float:
    """Negative log-likelihood (nats) of ids[1:] through transformers."""
    import torch

    logp = torch.log_softmax(logits_torch(model, ids)[:-1].double(), dim=-1)
    return float(-logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())


def control_mask(path: Path):
    """True for the control and unknown tokens of a GGUF (bos, eos, pad, <unk>, Gemma's <unusedN>, turn markers)."""
    import gguf
    import numpy as np

    types = np.asarray(gguf.GGUFReader(path).fields["tokenizer.ggml.token_type"].contents())
    return np.isin(types, (2, 3))


def generation_round(llm, prompts_ids, n: int, dev_chars_per_token: float, mask) -> dict:
    """Greedy decoding of ``n`` tokens after each prompt, control tokens banned (an end-of-text would
    end the text: both models write ``n`` text tokens, as benchmarks with ``ignore_eos`` do)."""
    import numpy as np

    from llama_cpp import LogitsProcessorList

    def ban(_, scores):
        scores[mask[:len(scores)]] = -np.inf
        return scores

    toks = chars = 0
    elapsed = 0.0
    texts = []
    for ids in prompts_ids:
        llm.reset()
        gen = llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, reset=True, logits_processor=LogitsProcessorList([ban]))
        out = [next(gen)]  # prompt evaluation and the first token, not timed
        t0 = time.perf_counter()
        for _ in range(n - 1):
            out.append(next(gen))
        elapsed += time.perf_counter() - t0
        toks += n - 1
        texts.append(llm.detokenize(out).decode("utf-8", errors="replace"))
        chars += len(llm.detokenize(out[1:]).decode("utf-8", errors="replace"))
    return {"tokens_per_s": toks / elapsed, "chars_per_s_dev": toks / elapsed * dev_chars_per_token,
            "chars_per_s_own": chars / elapsed, "own_chars_per_token": chars / toks, "sample": texts[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=False, help="the imported base folder (hypertok import, float32)")
    ap.add_argument("--merged", required=False, help="the merged HyperTok model (hypertok merge, float32)")
    ap.add_argument("--work", default=".data/gguf/files", help="where the GGUF files are written")
    ap.add_argument("--out", default="experiments/gguf", help="results.json and speed.png")
    ap.add_argument("--quants", nargs="+", default=["f16", "q8_0", "q4_0", "q4_k_m"])
    ap.add_argument("--bpc-chars", type=int, default=12000, help="characters of each dev text scored for bits/char")
    ap.add_argument("--window-chars", type=int, default=1000)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed-only", action="store_true", help="measure the generation speed again over --work's "
                                                                   "files, keeping the other figures of --out's results.json")
    ap.add_argument("--summary-only", action="store_true", help="rewrite summary.md and speed.png from --out's "
                                                                     "results.json, running nothing")
    args = ap.parse_args()
    if args.summary_only:
        from hypertok.files import atomic_write

        res = json.loads((Path(args.out) / "results.json").read_text(encoding="utf-8"))
        plot(res, Path(args.out) / "speed.png")
        atomic_write(Path(args.out) / "summary.md", summary(res))
        return 0
    if not (args.base and args.merged):
        ap.error("--base and --merged are needed (or --summary-only)")

    import llama_cpp
    import torch
    from transformers import AutoModelForCausalLM

    from hypertok.adapt.gguf_export import export_gguf
    from hypertok.files import atomic_write, library_versions

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    M = Models(Path(args.base), Path(args.merged))
    names = ("base", "hypertok")
    dev = {d: dev_lines(d) for d in ("ruslit", "modern")}
    wins = {d: windows(lines, args.window_chars, args.bpc_chars) for d, lines in dev.items()}
    new = M.tok["hypertok"].new
    singles = {s for s, k in zip(new.surfaces, new.kinds) if len(s) == 1 and k not in ("special", "byte")}
    cpt = {n: sum(len(line) for lines in dev.values() for line in lines)
           / sum(len(M.tok[n].encode(line)) for lines in dev.values() for line in lines) for n in names}
    if args.speed_only:  # the speed rounds again, over the files and figures of an earlier run
        res = json.loads((out / "results.json").read_text(encoding="utf-8"))
        res.update(gen_tokens=args.gen_tokens, repeats=args.repeats, threads=args.threads)
        return _quants(args, res, M, names, cpt, work, out, None, None, wins, llama_cpp, export_gguf)
    res: dict = {"chars_per_token_dev": cpt, "threads": args.threads, "gen_tokens": args.gen_tokens,
                 "repeats": args.repeats, "bpc_chars": args.bpc_chars, "window_chars": args.window_chars,
                 "versions": library_versions(["hypertok", "gguf", "llama_cpp_python", "torch", "transformers"]),
                 "quants": {}}

    # transformers on the float32 folders: the reference bits/char and logits
    ref, ref_logits = {}, {}
    probe = {n: M.ids(n, wins["ruslit"][0][:300]) for n in names}
    for n in names:
        model = AutoModelForCausalLM.from_pretrained(M.folder[n], dtype=torch.float32).eval()
        ref[n] = {d: sum(nats_torch(model, M.ids(n, w)) for w in ws) / math.log(2) / sum(map(len, ws))
                  for d, ws in wins.items()}
        ref_logits[n] = logits_torch(model, probe[n]).numpy()
        del model
        print(n, "transformers bits/char", ref[n], flush=True)
    res["transformers_bpc"] = ref

    # ids: the tokenizers alone (vocab_only), the same in every quantisation
    res["ids"] = {}
    for n in names:
        path = work / f"{n}-f16.gguf"
        export_gguf(M.folder[n], path, quant="f16", force=True)
        voc = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        res["ids"][n] = {d: id_agreement(voc, M.tok[n], lines, singles if n == "hypertok" else None)
                         for d, lines in dev.items()}
        print(n, "ids", {d: r["agree"] for d, r in res["ids"][n].items()}, flush=True)
        del voc

    return _quants(args, res, M, names, cpt, work, out, ref, ref_logits, wins, llama_cpp, export_gguf, probe)


def _quants(args, res, M, names, cpt, work, out, ref, ref_logits, wins, llama_cpp, export_gguf, probe=None) -> int:
    """Per quantisation: file sizes, bits/char and logits through llama.cpp (skipped with --speed-only), speed."""
    import numpy as np

    from hypertok.files import atomic_write

    for q in args.quants:
        r: dict = {}
        llms, masks = {}, {}
        for n in names:
            path = work / f"{n}-{q}.gguf"
            if not path.exists():
                export_gguf(M.folder[n], path, quant=q, force=True)
            masks[n] = control_mask(path)
            if args.speed_only:
                r[n] = dict(res["quants"][q][n])
                llms[n] = llama_cpp.Llama(model_path=str(path), n_ctx=512, logits_all=False, verbose=False,
                                          n_threads=args.threads, seed=args.seed)
                continue
            llm = llama_cpp.Llama(model_path=str(path), n_ctx=2048, n_batch=512, logits_all=True, verbose=False,
                                  n_threads=args.threads, seed=args.seed)
            own, theirs = [], []
            for d, ws in wins.items():
                a = b = 0.0
                for w in ws:
                    a -= logprobs_llama(llm, M.ids(n, w))[0].sum()
                    b -= logprobs_llama(llm, [M.bos[n]] + llm.tokenize(w.encode("utf-8"), add_bos=False))[0].sum()
                own.append((d, a / math.log(2) / sum(map(len, ws))))
                theirs.append((d, b / math.log(2) / sum(map(len, ws))))
            _, got = logprobs_llama(llm, probe[n])
            diff = np.abs(got[:, :ref_logits[n].shape[1]] - ref_logits[n]).max(axis=1)
            r[n] = {"bytes": path.stat().st_size, "bpc_model_ids": dict(own), "bpc_llama_ids": dict(theirs),
                    "bpc_vs_transformers": {d: dict(own)[d] / ref[n][d] - 1 for d in wins},
                    "logits_max_abs_diff": float(diff.max()), "logits_max_abs_diff_per_position": diff.round(5).tolist()}
            llm.close()
            llms[n] = llama_cpp.Llama(model_path=str(path), n_ctx=512, logits_all=False, verbose=False,
                                      n_threads=args.threads, seed=args.seed)
            print(q, n, {k: v for k, v in r[n].items() if k != "logits_max_abs_diff_per_position"}, flush=True)
        prompts = {n: [M.ids(n, p) for p in PROMPTS] for n in names}
        for n in names:  # warm-up
            generation_round(llms[n], prompts[n][:1], 8, cpt[n], masks[n])
        rounds: dict = {n: [] for n in names}
        for k in range(args.repeats):
            for n in (names if k % 2 == 0 else names[::-1]):
                rounds[n].append(generation_round(llms[n], prompts[n], args.gen_tokens, cpt[n], masks[n]))
        keys = [k for k in rounds["base"][0] if k != "sample"]
        for n in names:
            r[n]["speed"] = {key: statistics.median(x[key] for x in rounds[n]) for key in keys}
            r[n]["speed"]["sample"] = rounds[n][0]["sample"]
        r["speedup"] = {key: statistics.median(h[key] / b[key] for h, b in zip(rounds["hypertok"], rounds["base"]))
                        for key in keys}
        print(q, "speedup", r["speedup"], flush=True)
        for llm in llms.values():
            llm.close()
        res["quants"][q] = r
        atomic_write(out / "results.json", json.dumps(res, indent=2, ensure_ascii=False))
    plot(res, out / "speed.png")
    atomic_write(out / "summary.md", summary(res))
    return 0


def summary(res: dict) -> str:
    """The results as Markdown tables (``summary.md``), every figure read from ``results.json``."""
    ids = res["ids"]
    lines = ["# llama.cpp against transformers: Gemma 3 270M and its HyperTok 64k adaptation (CPU)", "",
             f"Threads: {res['threads']}; bits/char over the first {res['bpc_chars']} characters of each dev text, "
             f"in windows of about {res['window_chars']}; chars/token on both dev texts: base "
             f"{res['chars_per_token_dev']['base']:.3f}, HyperTok {res['chars_per_token_dev']['hypertok']:.3f}.", "",
             "ids (llama.cpp `tokenize` = the model's own tokenizer):", "",
             "| model | ruslit dev lines equal | modern dev lines equal |", "|---|---|---|"]
    for n in ("base", "hypertok"):
        r = ids[n]
        lines.append(f"| {n} | {r['ruslit']['lines'] - r['ruslit']['differ']:,} / {r['ruslit']['lines']:,} | "
                     f"{r['modern']['lines'] - r['modern']['differ']:,} / {r['modern']['lines']:,} |")
    for n in ("base", "hypertok"):
        for d in ("ruslit", "modern"):
            for x in ids[n][d]["differences"]:
                lines.append(f"- {n}, {d} line {x['line']}: {x['cause']}: `{x['text'][:80]}`")
    lines += ["", "| quant | model | file MB | bits/char ruslit (transformers / llama.cpp) | bits/char modern "
              "(transformers / llama.cpp) | same, llama.cpp's own ids | max abs logit diff | tokens/s | "
              "chars/s (dev rate) |", "|---|---|---|---|---|---|---|---|---|"]
    t = res["transformers_bpc"]
    for q, r in res["quants"].items():
        for n in ("base", "hypertok"):
            x = r[n]
            lines.append(
                f"| {q} | {n} | {x['bytes'] / 1e6:.1f} | {t[n]['ruslit']:.4f} / {x['bpc_model_ids']['ruslit']:.4f} | "
                f"{t[n]['modern']:.4f} / {x['bpc_model_ids']['modern']:.4f} | {x['bpc_llama_ids']['ruslit']:.4f} / "
                f"{x['bpc_llama_ids']['modern']:.4f} | {x['logits_max_abs_diff']:.3f} | "
                f"{x['speed']['tokens_per_s']:.1f} | {x['speed']['chars_per_s_dev']:.1f} |")
        sp = r["speedup"]
        lines.append(f"| {q} | **HyperTok / base** | {r['hypertok']['bytes'] / r['base']['bytes']:.2f}x | | | | | "
                     f"**{sp['tokens_per_s']:.2f}x** | **{sp['chars_per_s_dev']:.2f}x** (own output: "
                     f"{sp['chars_per_s_own']:.2f}x) |")
    first = next(iter(res["quants"].values()))
    if "sample" in first["base"]["speed"]:
        lines += ["", f"Greedy output of the speed rounds ({next(iter(res['quants']))}, first prompt, control tokens "
                  f"banned), and characters per generated token:", ""]
        for n in ("base", "hypertok"):
            sp = first[n]["speed"]
            lines.append(f"- {n} ({sp['own_chars_per_token']:.2f} chars/token): `{sp['sample'][:200]!r}`")
    return "\n".join(lines) + "\n"


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qs = list(res["quants"])
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    x = range(len(qs))
    for i, (n, colour) in enumerate((("base", "#888"), ("hypertok", "#c33"))):
        ax[0].bar([j + 0.38 * i for j in x], [res["quants"][q][n]["speed"]["chars_per_s_dev"] for q in qs], 0.38,
                  color=colour, label=f"{n} ({res['chars_per_token_dev'][n]:.2f} chars/token)")
        ax[1].bar([j + 0.38 * i for j in x], [res["quants"][q][n]["bytes"] / 1e6 for q in qs], 0.38, color=colour,
                  label=n)
    for a, title in zip(ax, ("generation, chars/s (llama.cpp, CPU)", "file size, MB")):
        a.set_xticks([j + 0.19 for j in x], qs)
        a.set_title(title)
        a.legend(fontsize=8)
    for j, q in enumerate(qs):
        ax[0].text(j + 0.19, 0, f"x{res['quants'][q]['speedup']['chars_per_s_dev']:.2f}", ha="center", va="bottom")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    raise SystemExit(main())
