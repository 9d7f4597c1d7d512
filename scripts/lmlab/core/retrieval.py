"""BM25 retrieval, the one implementation every stage uses (rank_bm25's Okapi BM25).

Two IDF variants, chosen by the caller:
- "okapi": rank_bm25's own (negative IDFs floored at epsilon x mean IDF), used over the
  knowledge base by the agents' search tool;
- "lucene": log(1 + (N - n + 0.5) / (n + 0.5)), never negative, used by the context study
  where the "corpus" is the few windows of one document and most terms occur in most of
  them (Okapi's floor would then rank windows by the floor value, not by the terms).
"""

import math

import numpy as np
from rank_bm25 import BM25Okapi


class _BM25(BM25Okapi):
    """rank_bm25's Okapi BM25, scoring only the documents that hold each query term: a term
    a document lacks adds exactly 0 (rank_bm25 computes 0/0 = NaN for it when k1 = 0, or
    when b = 1 and the document is empty; the schema allows both settings)."""

    def get_scores(self, query):
        score = np.zeros(self.corpus_size)
        doc_len = np.array(self.doc_len)
        for q in query:
            q_freq = np.array([doc.get(q, 0) for doc in self.doc_freqs], dtype=float)
            hit = q_freq > 0
            norm = q_freq[hit] + self.k1 * (1 - self.b + self.b * doc_len[hit] / self.avgdl)
            score[hit] += self.idf.get(q, 0) * (q_freq[hit] * (self.k1 + 1) / norm)
        return score


class _LuceneIdfBM25(_BM25):
    def _calc_idf(self, nd):
        for word, freq in nd.items():
            self.idf[word] = math.log((self.corpus_size - freq + 0.5) / (freq + 0.5) + 1.0)


def bm25_index(docs, k1=1.5, b=0.75, idf="okapi"):
    """An index over `docs` (lists of terms), or None when there is nothing to index
    (BM25 divides by the corpus size and the mean document length)."""
    if not docs or not any(docs):
        return None
    if idf == "okapi":
        return _BM25(docs, k1=k1, b=b)
    if idf == "lucene":
        return _LuceneIdfBM25(docs, k1=k1, b=b)
    raise ValueError(f"bm25 idf: {idf!r} is not okapi or lucene")


def bm25_scores(query_terms, docs, k1=1.5, b=0.75, idf="okapi"):
    """BM25 score of each doc (a list of terms) for the query terms; 0.0 for every doc when
    the docs hold no terms."""
    index = bm25_index(docs, k1, b, idf)
    if index is None:
        return [0.0] * len(docs)
    return [float(s) for s in index.get_scores(list(query_terms))]
