"""Cross-tokenizer self-distillation: the base model, reading the same text with its own
tokenizer, teaches the adapted model (ALM, Minixhofer et al. 2025; issue 10).

What it does:

- :func:`byte_ends` turns a row of token ids into the UTF-8 byte offset where each token
  ends in the row's text (bytes, not characters, so a byte-fallback token that ends inside
  a character still has a place).
- :func:`align_spans` finds the offsets where *both* tokenizations have a boundary and
  gives every token the index of the span it belongs to: a span runs from one common
  boundary to the next, so a multi-word HyperTok entry and the four base pieces that spell
  it fall into the same span. Tokens that spell no bytes (``<s>``, ``</s>``) and tokens
  after the last common boundary get ``-1`` and are left out.
- :func:`span_logprobs` sums per-token log-probabilities into per-span log-likelihoods
  (``log p(span | text before it)``), for student and teacher alike.
- :func:`alm_loss` compares the two per span with the binarised cross-entropy of ALM: each
  span is a Bernoulli event "the model writes exactly this span next" with probability
  ``exp(logp / temperature)``, and the student's Bernoulli is pulled toward the teacher's.
- :func:`teacher_rows` turns a batch of packed student rows into the teacher's rows for
  the same text (the bytes of each run of text tokens re-encoded by the base tokenizer,
  ``<s>``/``</s>`` kept in place) plus the span ids of both.
- :class:`Distiller` runs the frozen teacher on those rows and gives the training loop
  ``next-token loss + weight x ALM loss`` from one student forward pass.
- :class:`HiddenMatcher` (issue 21) is the other teacher signal, for what the model *reads*:
  at every common boundary the student's hidden states, layer by layer, are pulled toward
  the teacher's after the same bytes (:func:`span_first_positions` finds both places). It is
  meant for stage 1, rows alone and the body still the base's, where it fits each new row's
  input role to the pieces it replaces.

The temperature follows tokenkit's binarised loss: with a large temperature ``exp(l / tau)``
is close to ``1 + l / tau``, and the loss pulls the student's span log-likelihood toward the
teacher's by their relative difference, for likely and unlikely spans alike (at ``tau = 1``
almost every span has a probability near 0 and the gradient vanishes). The loss is
multiplied by ``tau`` so that its weight means the same at every temperature.

What it does not do: no span kinds other than ALM's "unconstrained" one, hidden states
matched only at span starts (never inside a span, where the two models have read different
bytes), no teacher other than a frozen causal LM.

>>> pb = [b"", " в том".encode(), b" ", "в".encode(), " том".encode()]   # ids 0..4
>>> s_ends, t_ends = byte_ends(pb, [[0, 1]])[0], byte_ends(pb, [[0, 2, 3, 4]])[0]
>>> align_spans(s_ends, t_ends, [0, 10], [0, 1, 2, 7])
(array([-1,  0]), array([-1,  0,  0,  0]), 1)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..loss import IGNORE_INDEX


def byte_ends(piece_bytes: Sequence[bytes | None], rows: Sequence[Sequence[int]]) -> list[np.ndarray]:
    """For each row of ids, the cumulative UTF-8 byte offset at the end of each token.

    ``piece_bytes[id]`` is the bytes an id spells (``b""`` for specials). An id whose bytes
    are unknown (``None``) is an error: the alignment would silently drift.
    """
    lengths = np.array([-1 if b is None else len(b) for b in piece_bytes], dtype=np.int64)
    out = []
    for row in rows:
        ln = lengths[np.asarray(row, dtype=np.int64)]
        if (ln < 0).any():
            bad = int(np.asarray(row)[ln < 0][0])
            raise ValueError(f"token id {bad} spells unknown bytes; cannot align it with another tokenizer")
        out.append(np.cumsum(ln))
    return out


def align_spans(student_ends: np.ndarray, teacher_ends: np.ndarray, student_len: Sequence[int] | np.ndarray,
                teacher_len: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Span index of every student and teacher token, and the number of spans.

    ``*_ends`` are cumulative byte offsets (:func:`byte_ends`); ``*_len`` the bytes each
    token spells (a token of length 0 gets ``-1``). Both rows must spell the same bytes.
    """
    student_ends, teacher_ends = np.asarray(student_ends), np.asarray(teacher_ends)
    s_len, t_len = np.asarray(student_len), np.asarray(teacher_len)
    if student_ends.size and teacher_ends.size and student_ends[-1] != teacher_ends[-1]:
        raise ValueError(f"the rows spell different texts ({student_ends[-1]} vs {teacher_ends[-1]} bytes)")
    common = np.intersect1d(student_ends[s_len > 0], teacher_ends[t_len > 0])  # sorted, unique

    def assign(ends: np.ndarray, lens: np.ndarray) -> np.ndarray:
        span = np.searchsorted(common, ends, side="left")  # first common boundary at or after the token's end
        span[(lens == 0) | (span >= len(common))] = -1
        return span

    return assign(student_ends, s_len), assign(teacher_ends, t_len), int(len(common))


def span_logprobs(token_logprobs, span_ids, n_spans: int):
    """``(B, T)`` token log-probs and ``(B, T)`` span ids (-1: none) -> ``(B, n_spans)`` sums."""
    import torch

    B = token_logprobs.shape[0]
    idx = span_ids.clamp(min=-1).long()
    idx = torch.where(idx < 0, torch.full_like(idx, n_spans), idx)          # (B, T); n_spans = a bin for the rest
    out = torch.zeros(B, n_spans + 1, dtype=torch.float32, device=token_logprobs.device)
    out.scatter_add_(1, idx, token_logprobs.float())
    return out[:, :n_spans]                                                # (B, C)


def _log1mexp(x):
    """log(1 - exp(x)) for x < 0, stable at both ends."""
    import torch

    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def alm_loss(student_span_lp, teacher_span_lp, mask, temperature: float = 1.0, eps: float = 1e-6):
    """Binarised cross-entropy between teacher and student span probabilities (ALM).

    ``mask`` (B, C) marks real spans. Returns ``temperature`` x the mean over spans. As a
    function of the student it is smallest where the two agree.

    >>> import torch
    >>> t = torch.tensor([[-3.0, -0.5]]); m = torch.ones(1, 2)
    >>> bool(alm_loss(t, t, m, 10.0) < alm_loss(t - 1.0, t, m, 10.0))
    True
    """
    import torch

    ls = student_span_lp.float() / temperature - eps                       # (B, C), < 0
    lt = teacher_span_lp.float().detach() / temperature - eps
    ls, lt = ls.clamp(max=-eps), lt.clamp(max=-eps)
    bce = -(torch.exp(lt) * ls + (-torch.expm1(lt)) * _log1mexp(ls))        # (B, C)
    m = mask.float()
    return temperature * (bce * m).sum() / m.sum().clamp(min=1.0)


def teacher_rows(Z: np.ndarray, student, teacher, bos: int, eos: int, context: int = 1) -> dict:
    """The teacher's view of a batch of student rows, and the span alignment of the two.

    ``Z`` (B, T+1) are student rows *with* their last target (``X = Z[:, :-1]``, labels
    ``Z[:, 1:]``), as the packed stream holds them. Each row is cut into ``<s>``, ``</s>`` and
    runs of text tokens; each run is decoded (lossless) and re-encoded by ``teacher``, and
    ``<s>``/``</s>`` map to the teacher's own. The first ``context`` tokens of the row are
    context, not targets, for both models: spans start after their text. ``context=2`` is a
    row that starts with an added ``<s>`` (:func:`~hypertok.adapt.data.rows_of`'s
    ``bos_first``): the ``<s>`` and the stream token after it, whose prediction from the added
    ``<s>`` is no target; the teacher's row then starts with its own ``<s>`` too, as Gemma needs.

    ``student``/``teacher`` need ``encode_batch(texts)``, ``piece_bytes``, ``bos_id`` and
    ``eos_id``. A row whose runs are not whole UTF-8 text (it starts or ends inside a
    character) or that the teacher cannot spell byte for byte gets no spans.

    Returns numpy arrays: teacher ``input_ids``/``position_ids`` (B, U) padded with the
    teacher's ``<s>``, teacher ``targets`` (B, U) (-100: none), ``student_span`` (B, T) and
    ``teacher_span`` (B, U) span ids (-1: left out), ``spans_per_row`` (B,), and ``n_spans``.
    """
    B, T1 = Z.shape
    if not 1 <= context < T1:
        raise ValueError(f"context must be 1 .. {T1 - 1} tokens of a {T1}-token row, got {context}")
    s_pb, t_pb = student.piece_bytes, teacher.piece_bytes
    s_len_tab = np.array([0 if b is None else len(b) for b in s_pb], dtype=np.int64)
    t_len_tab = np.array([0 if b is None else len(b) for b in t_pb], dtype=np.int64)
    rows, runs, valid = [], [], np.ones(B, dtype=bool)
    for r in range(B):
        z = Z[r]
        special = (z == bos) | (z == eos)
        cut = np.flatnonzero(np.diff(special.astype(np.int8)) != 0) + 1
        cut = np.union1d(cut, [context])   # the context ends a run: the teacher's boundary there is the student's
        parts = []
        for seg in np.split(np.arange(T1), cut):
            if special[seg[0]]:
                parts.append(("special", [teacher.bos_id if z[i] == bos else teacher.eos_id for i in seg]))
                continue
            raw = b"".join(s_pb[i] or b"" for i in z[seg])
            try:
                text = raw.decode("utf-8")   # a row that starts or ends inside a character: no spans
            except UnicodeDecodeError:
                valid[r], text = False, ""
            parts.append(("text", (len(runs), len(raw))))
            runs.append(text)
        rows.append(parts)
    encoded = teacher.encode_batch(runs) if runs else []
    t_rows = []
    for r, parts in enumerate(rows):
        ids = []
        for kind, v in parts:
            if kind == "text":
                run = encoded[v[0]]
                if int(t_len_tab[run].sum()) != v[1]:    # the teacher does not spell these bytes exactly
                    valid[r] = False
                v = run
            ids.extend(v)
        t_rows.append(ids if valid[r] else [teacher.bos_id, teacher.bos_id])
    U1 = max(len(t) for t in t_rows)
    U = U1 - 1
    tin = np.full((B, U), teacher.bos_id, dtype=np.int64)
    tgt = np.full((B, U), IGNORE_INDEX, dtype=np.int64)
    pos = np.zeros((B, U), dtype=np.int64)
    s_span = np.full((B, T1 - 1), -1, dtype=np.int64)   # targets inside the context stay -1
    t_span = np.full((B, U), -1, dtype=np.int64)
    n_spans = 0
    spans_per_row = []
    for r, t in enumerate(t_rows):
        t = np.asarray(t, dtype=np.int64)
        n = len(t) - 1
        tin[r, :n], tgt[r, :n] = t[:-1], t[1:]
        if not valid[r]:
            tgt[r, :n] = IGNORE_INDEX
            spans_per_row.append(0)
            continue
        starts = t[:-1] == teacher.bos_id
        starts[0] = True
        ar = np.arange(n)
        pos[r, :n] = ar - np.maximum.accumulate(np.where(starts, ar, 0))
        # byte ends of every target, counted from the end of the context
        z = Z[r]
        s_first = s_len_tab[z[:context]].sum()
        s_ln = s_len_tab[z[context:]]
        s_end = np.cumsum(s_ln)
        t_ln = t_len_tab[t[1:]]
        t_end = np.cumsum(t_ln) + t_len_tab[t[0]] - s_first       # teacher may spell the context in several tokens
        t_ln = np.where(t_end <= 0, 0, t_ln)                       # targets inside the context are not spans
        ss, ts, c = align_spans(s_end, t_end, s_ln, t_ln)
        s_span[r, context - 1:], t_span[r, :n] = ss, ts
        spans_per_row.append(c)
        n_spans = max(n_spans, c)
    return {"input_ids": tin, "position_ids": pos, "targets": tgt, "student_span": s_span,
            "teacher_span": t_span, "n_spans": n_spans, "spans_per_row": np.asarray(spans_per_row)}


def frozen(teacher):
    """``teacher`` in eval mode with no parameter requiring grad (a teacher is never trained)."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


class _TeacherLoss:
    """What :class:`Distiller` and :class:`HiddenMatcher` share: a frozen teacher with its own
    tokenizer, the student's rows re-cut for it (:func:`teacher_rows`) and the student's
    next-token loss, to which each adds ``weight`` x its own term."""

    what = "teacher loss"

    def __init__(self, teacher, student_tok, teacher_tok, weight: float, chunk: int):
        if weight <= 0:
            raise ValueError(f"{self.what} weight must be positive, got {weight}")
        self.teacher, self.student_tok, self.teacher_tok = frozen(teacher), student_tok, teacher_tok
        self.weight, self.chunk = weight, chunk

    def teacher_rows(self, Z, context: int) -> dict:
        return teacher_rows(Z, self.student_tok, self.teacher_tok, self.student_tok.bos_id, self.student_tok.eos_id,
                            context)

    def student(self, model, X, P, Y, hidden_states: bool = False):
        """``(out, lp, n, nll)``: the student's body output, its (B, T) target log-probs, the number
        of targets and their mean negative log-likelihood."""
        from ..loss import token_logprobs

        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        out = inner.model(input_ids=X, position_ids=P, use_cache=False, output_hidden_states=hidden_states)
        lp = token_logprobs(out.last_hidden_state, Y, inner.lm_head, self.chunk)             # (B, T)
        n = int((Y != IGNORE_INDEX).sum())
        return out, lp, n, -lp.sum() / max(1, n)


class Distiller(_TeacherLoss):
    """The frozen base model as teacher: ``loss(...)`` is the student's next-token loss plus
    ``weight`` x the ALM loss on the spans both tokenizations share.

    ``teacher``: a causal LM with the base vocabulary (frozen here), ``teacher_tok`` its
    lossless tokenizer, ``student_tok`` the adapted tokenizer (ids = model rows). The
    teacher runs without gradient, in the student's autocast; its cost per step is one
    forward pass over about ``student chars/token / teacher chars/token`` times as many
    tokens as the student's (measured in ``experiments/adapt``).
    """

    what = "distillation"

    def __init__(self, teacher, student_tok, teacher_tok, weight: float = 1.0, temperature: float = 100.0,
                 chunk: int = 8192):
        super().__init__(teacher, student_tok, teacher_tok, weight, chunk)
        self.temperature = temperature

    def loss(self, model, Z, X, P, Y, context: int = 1):
        """``(loss, n_targets, logs)`` for student rows ``X``/``P``/``Y`` (tensors, (B, T)) whose
        rows with their last target are ``Z`` (numpy, (B, T+1)); ``context``: as
        :func:`teacher_rows` (2 for rows that start with an added ``<s>``)."""
        import torch

        from ..loss import token_logprobs

        device = X.device
        tb = self.teacher_rows(Z, context)
        _, lp, n, nll = self.student(model, X, P, Y)
        C = max(1, tb["n_spans"])
        with torch.no_grad():
            tX, tP, tY = (torch.from_numpy(tb[k]).to(device, non_blocking=True)
                          for k in ("input_ids", "position_ids", "targets"))
            th = self.teacher.model(input_ids=tX, position_ids=tP, use_cache=False).last_hidden_state  # (B, U, d)
            tlp = token_logprobs(th, tY, self.teacher.lm_head, self.chunk, checkpoint=False)          # (B, U)
            t_span = span_logprobs(tlp, torch.from_numpy(tb["teacher_span"]).to(device), C)           # (B, C)
        s_span = span_logprobs(lp, torch.from_numpy(tb["student_span"]).to(device), C)                # (B, C)
        mask = torch.arange(C, device=device)[None, :] < torch.from_numpy(tb["spans_per_row"]).to(device)[:, None]
        alm = alm_loss(s_span, t_span, mask, self.temperature)
        logs = {"nll": nll.detach(), "alm": alm.detach(), "teacher_tokens": int((tY != IGNORE_INDEX).sum())}
        return nll + self.weight * alm, n, logs


def span_first_positions(span_ids: np.ndarray, n_spans: int) -> np.ndarray:
    """``(B, T)`` span ids (-1: none) -> ``(B, n_spans)`` the position of each span's first token (-1: none).

    A span's first target is predicted from the hidden state at its position, which has read the
    row up to the span's opening boundary, the same bytes in both tokenizations.

    >>> span_first_positions(np.array([[-1, 0, 0, 1, -1], [0, 1, 1, -1, -1]]), 3)
    array([[ 1,  3, -1],
           [ 0,  1, -1]])
    """
    B, T = span_ids.shape
    out = np.full((B, n_spans), T, dtype=np.int64)
    for r in range(B):
        keep = np.flatnonzero((span_ids[r] >= 0) & (span_ids[r] < n_spans))
        np.minimum.at(out[r], span_ids[r, keep], keep)
    out[out == T] = -1
    return out


def hidden_match_loss(student_hidden, teacher_hidden, s_pos, t_pos, rows):
    """The mean over layers, dimensions and matched places of ``((h_s - h_t) / sd_t)^2``.

    ``*_hidden``: sequences of (B, T, d) / (B, U, d) layer outputs, the same layers on both
    sides; ``rows``, ``s_pos``, ``t_pos``: 1-D index tensors of the matched places (at least
    two). ``sd_t`` is each dimension's spread over the teacher's matched places, so that neither
    a layer's scale nor the few huge dimensions of a model like Gemma outweigh the rest. 0
    where the two agree; 1 where the student gives every place the teacher's mean.

    >>> import torch
    >>> h = [torch.tensor([[[0.0, 5.0], [2.0, 9.0], [4.0, 1.0]]])]
    >>> i = torch.tensor([0, 0]), torch.tensor([0, 1])
    >>> flat = [torch.tensor([[[1.0, 7.0], [1.0, 7.0]]])]             # the teacher's mean at both places
    >>> float(hidden_match_loss(h, h, i[1], i[1], i[0])), float(hidden_match_loss(flat, h, i[1], i[1], i[0]))
    (0.0, 1.0)
    """
    import torch

    terms = []
    for hs, ht in zip(student_hidden, teacher_hidden, strict=True):
        a, b = hs[rows, s_pos].float(), ht[rows, t_pos].float()                # (M, d)
        sd = b.std(0, correction=0, keepdim=True)
        sd = torch.maximum(sd, 1e-3 * sd.mean() + 1e-12)                        # a dimension that never moves
        terms.append((((a - b) / sd) ** 2).mean())
    return torch.stack(terms).mean()


class HiddenMatcher(_TeacherLoss):
    """The frozen base as teacher of what the student reads: ``loss(...)`` is the student's
    next-token loss plus ``weight`` x :func:`hidden_match_loss` over ``layers`` (indices into
    the models' ``hidden_states``, 0 the embedding output; default every layer after it) at
    the start of every span both tokenizations share.

    Same interface as :class:`Distiller`. In stage 1 (rows alone, LoRA still zero) the body is
    the base's, so a new row can reproduce what the base computes after reading its pieces only
    through what it feeds the body: the match fits the rows' input role, the next-token loss
    keeps their output role (the head is tied on Gemma) in view.
    """

    what = "hidden-state match"

    def __init__(self, teacher, student_tok, teacher_tok, weight: float = 1.0, layers: Sequence[int] | None = None,
                 chunk: int = 8192):
        super().__init__(teacher, student_tok, teacher_tok, weight, chunk)
        self.layers = layers

    def loss(self, model, Z, X, P, Y, context: int = 1):
        """``(loss, n_targets, logs)`` as :meth:`Distiller.loss`; logs ``nll``, ``match`` and
        ``matched`` (the places compared)."""
        import torch

        device = X.device
        tb = self.teacher_rows(Z, context)
        C = max(1, tb["n_spans"])
        s_pos, t_pos = span_first_positions(tb["student_span"], C), span_first_positions(tb["teacher_span"], C)
        rows, spans = np.nonzero((s_pos >= 0) & (t_pos >= 0))
        out, _, n, nll = self.student(model, X, P, Y, hidden_states=True)
        layers = list(self.layers) if self.layers else list(range(1, len(out.hidden_states)))
        with torch.no_grad():
            tX, tP = (torch.from_numpy(tb[k]).to(device, non_blocking=True) for k in ("input_ids", "position_ids"))
            th = self.teacher.model(input_ids=tX, position_ids=tP, use_cache=False, output_hidden_states=True)
        r, sp, tp = (torch.from_numpy(a).to(device) for a in (rows, s_pos[rows, spans], t_pos[rows, spans]))
        if len(rows) > 1:
            match = hidden_match_loss([out.hidden_states[k] for k in layers], [th.hidden_states[k] for k in layers],
                                      sp, tp, r)
        else:  # under two common boundaries in the batch: no spread to measure, the next-token loss alone
            match = nll.new_zeros(())
        return nll + self.weight * match, n, {"nll": nll.detach(), "match": match.detach(), "matched": len(rows)}
