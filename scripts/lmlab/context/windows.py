"""Window arithmetic of the context study: keep-the-beginning truncation, sliding windows,
and token spans.

Conventions used throughout the study (and stated in the paper):

- Truncation keeps the *beginning* (`truncation=True`, `truncation_side="right"`, the
  Hugging Face default): a sequence of n tokens in a window of W keeps tokens [0, W) and
  loses max(0, n - W). A span survives only if all of its tokens lie before the cut, i.e.
  its exclusive end token index is <= W.
- Sliding windows of size W with stride S start at 0, S, 2S, ... while the window still
  fits, plus one last window aligned to the end of the sequence when the regular starts
  leave a tail uncovered; a sequence of n <= W tokens is one window. Overlap cost is the
  number of token positions processed beyond n.
- For QA the context window W bounds the whole prompt: the document gets the budget
  W - (prompt tokens that are not document), so the question and the answer header
  always fit ("document truncation"), and a sliding window over the document has that
  budget as its size.
"""


def truncation(n_tokens, window):
    """Keep-the-beginning truncation of n tokens to a window of W tokens."""
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    kept = min(n_tokens, window)
    lost = n_tokens - kept
    return {
        "tokens": n_tokens,
        "kept": kept,
        "lost": lost,
        "fraction_lost": lost / n_tokens if n_tokens else 0.0,
        "truncated": lost > 0,
    }


def span_survives(span_end, window):
    """A token span [start, span_end) survives keep-the-beginning truncation to `window`
    iff all its tokens come before the cut."""
    return span_end <= window


def window_starts(n_tokens, window, stride):
    """Start offsets of sliding windows (see the module docstring for the convention)."""
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be positive, got {window}, {stride}")
    if stride > window:
        raise ValueError(f"stride {stride} > window {window} would skip tokens")
    if n_tokens <= window:
        return [0]
    starts = list(range(0, n_tokens - window + 1, stride))
    if starts[-1] + window < n_tokens:
        starts.append(n_tokens - window)
    return starts


def window_cost(n_tokens, window, stride):
    """{windows, tokens_processed, overlap_tokens} of covering n tokens with sliding windows."""
    starts = window_starts(n_tokens, window, stride)
    processed = sum(min(window, n_tokens - s) for s in starts)
    return {"windows": len(starts), "tokens_processed": processed, "overlap_tokens": processed - n_tokens}


def doc_stride(budget, stride_fraction):
    """Stride of the sliding windows over a document budget of `budget` tokens."""
    return max(1, int(budget * stride_fraction))


def windows_holding(span, starts, window):
    """Indices of the windows that contain the whole token span [start, end)."""
    start, end = span
    return [i for i, s in enumerate(starts) if s <= start and end <= s + window]


def char_span_to_tokens(offsets, char_start, char_end):
    """Token span [first, end) of the tokens whose character offsets overlap
    [char_start, char_end); offsets are (start, end) per token, as from a fast tokenizer."""
    hits = [i for i, (s, e) in enumerate(offsets) if s < char_end and e > char_start]
    if not hits:
        raise ValueError(f"no token overlaps characters [{char_start}, {char_end})")
    return hits[0], hits[-1] + 1


def token_window_chars(offsets, start, size):
    """Character range [first, end) of the tokens [start, start + size) (cut at the last
    token); offsets are (start, end) per token."""
    end = min(start + size, len(offsets))
    return offsets[start][0], offsets[end - 1][1]
