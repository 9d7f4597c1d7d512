"""Statistics for evaluation results: bootstrap intervals, paired tests, multiplicity
correction, win rates (raw and length-controlled), proportion tests, and agreement.

Built on scipy.stats; every random step takes a `seed` (an int, or a numpy Generator that
is then advanced), so the same inputs and seed give identical outputs. Nothing is rounded
here: formatting is the caller's job.

Interval results share one shape: {estimate, low, high, n, method}. Which method:

- a share of binary outcomes (0/1): the Wilson score interval ("wilson"), which never
  collapses at 0/n or n/n; with clustered items (a repeated question and its original) the
  Wilson interval of the effective sample size n / design effect ("wilson-deff");
- outcomes in [0, 1] with ties counted 1/2 (win rates, pairwise accuracy): the same Wilson
  interval on their mean, conservative since the variance of such an outcome is at most
  the Bernoulli variance of its mean;
- a paired difference of two binary outcomes: Newcombe's hybrid score interval from the
  two Wilson intervals and the phi correlation of the pairs ("newcombe"), with its test
  the sign-flip test of the paired differences over clusters (McNemar without clusters),
  mid-p by default;
- continuous metrics: the bootstrap, "BCa" ("percentile" when BCa is degenerate or n < 3,
  and always with cluster or stratum resampling), "constant" when every value is equal.

`decide` is the one decision rule: a difference is called increased or decreased only
when its test rejects at the family's alpha after Holm's correction. `mde_*` give the
minimum detectable effect at 80% power, so that a null reads "no effect larger than X".

Modules: resampling (bootstrap), proportions (shares, paired shares, homogeneity), decisions
(tests, Holm, `decide`), power (minimum detectable effects), winrates, agreement. Import from
`lmlab.core.stats`; the modules are how the code is kept, not separate APIs.
"""

from lmlab.core.stats.resampling import (  # noqa: F401
    bootstrap_ci,
    paired_bootstrap_diff,
    grouped_bootstrap_ci,
    ratio_ci,
)
from lmlab.core.stats.power import (  # noqa: F401
    POWER,
    mcnemar_power,
    mde_paired_binary,
    mde_proportion,
    mde_two_proportions,
    mde_paired_mean,
)
from lmlab.core.stats.decisions import (  # noqa: F401
    mcnemar_exact,
    sign_flip_test,
    holm,
    decide,
    paired_mean_difference,
)
from lmlab.core.stats.proportions import (  # noqa: F401
    wilson_interval,
    design_effect,
    proportion_ci,
    mean_ci,
    paired_proportion_difference,
    proportion_difference_test,
)
from lmlab.core.stats.winrates import (  # noqa: F401
    win_rate,
    win_rate_from_judgements,
    fit_logistic_1d,
    lc_not_identified,
    length_controlled_win_rate,
)
from lmlab.core.stats.agreement import (  # noqa: F401
    cohen_kappa,
    quadratic_weighted_kappa,
    agreement_ci,
    krippendorff_alpha,
    krippendorff_alpha_ordinal,
)
