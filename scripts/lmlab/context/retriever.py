"""The lexical retriever that picks one sliding window of a long document: retrieval terms
(word runs, accent-folded), the terms of each window, and BM25 top-1 over the windows.

The scoring is lmlab.core.retrieval's BM25 with the Lucene IDF, log(1 + (N - n + 0.5) /
(n + 0.5)): the corpus is the few windows of one document, most terms occur in most of
them, and that IDF stays positive there.
"""

import bisect
import re
from functools import lru_cache

from lmlab.core.retrieval import bm25_scores
from lmlab.core.text import fold
from lmlab.context.windows import token_window_chars

_WORD = re.compile(r"\w+")

# Words repeat across the windows of a document: fold each distinct word once.
_term = lru_cache(maxsize=None)(fold)


def terms(text):
    """Retrieval terms: word runs, casefolded, accents stripped."""
    return [_term(w) for w in _WORD.findall(text)]


def located_terms(text):
    """(starts, ends, terms) of the words of `text`, so windows can take their terms by
    character range without re-normalising the text (words are sorted, non-overlapping)."""
    matches = list(_WORD.finditer(text))
    return [m.start() for m in matches], [m.end() for m in matches], [_term(m.group()) for m in matches]


def terms_between(located, char_start, char_end):
    """Terms of the words lying wholly inside [char_start, char_end)."""
    starts, ends, words_ = located
    return words_[bisect.bisect_left(starts, char_start) : bisect.bisect_right(ends, char_end)]


def window_passages(located, offsets, starts, size):
    """Terms of each sliding window (token starts `starts`, `size` tokens each) of the
    document whose `located_terms` and token offsets are given."""
    return [terms_between(located, *token_window_chars(offsets, s, size)) for s in starts]


def retrieve_top1(query, passages, k1=1.2, b=0.75):
    """Index of the best BM25 passage; ties go to the earliest passage. The passages are
    the corpus (IDF over them); query and passages are texts or already-made term lists."""
    query_terms = terms(query) if isinstance(query, str) else list(query)
    docs = [terms(p) if isinstance(p, str) else list(p) for p in passages]
    scores = bm25_scores(query_terms, docs, k1=k1, b=b, idf="lucene")
    return max(range(len(scores)), key=lambda i: (scores[i], -i))
