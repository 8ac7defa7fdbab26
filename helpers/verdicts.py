"""Conclusions a notebook prints about its own run, decided so that seed noise and the
learning-rate grid cannot flip them.

* :func:`shared_learning_rates`: which learning rates are "best" at every width. A
  learning rate counts as good at a width when its seed-mean loss there is within the
  seeds' spread (max - min over seeds, at that width's best learning rate) of the
  width's best mean loss. The rates good at every width are shared; if there is one,
  the learning rate transfers.
* :func:`clear_winner`: the method with the lowest mean that beats every other method
  on every seed (paired: the same seeds), by more than float rounding. Otherwise
  there is no clear winner.

* :func:`paired_comparison`: a two-sided paired t-test of an effect measured on each seed.
  It returns "detected" (the effect, its standard error and its sign) or "not detected with
  n seeds" together with the smallest effect the test would detect with 80% power. A
  comparison that detects nothing never says the effect is absent or small: it says what
  size of effect the test would have caught four times in five.
* :func:`switch_ablation`: a 2x2 ablation of two on/off switches. Both simple effects of each
  switch (with the other switch on, and off) and their interaction, each a paired comparison.
* :func:`select_then_compare`: choose each method's learning rate on some seeds and compare
  the methods on other seeds. A rate chosen on the seeds it is compared on favours the
  method whose noise happened to help it there (the best of several noisy means is biased low).

All need at least two seeds: with one seed nothing measures the noise.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

ROUNDING = 1e-6  # relative: differences below this are float rounding, not a result


def _seed_axis(values, name: str, ndim: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes (seed first), got shape {values.shape}.")
    if values.shape[0] < 2:
        raise ValueError(f"{name} has {values.shape[0]} seed(s): a noise-aware verdict needs at least 2 seeds.")
    return values


@dataclass
class TransferVerdict:
    """Per width: the best learning rate, its seed-mean loss, the noise tolerance; and the
    learning rates within tolerance of the best at every width (``shared``)."""

    lrs: np.ndarray
    best_lr: np.ndarray
    best_loss: np.ndarray
    tolerance: np.ndarray
    good: np.ndarray  # [width, lr]: within tolerance of that width's best
    shared: list

    @property
    def transfers(self) -> bool:
        return bool(self.shared)

    @property
    def grid_steps(self) -> int:
        """How many grid points separate the smallest and the largest best learning rate."""
        index = [int(np.flatnonzero(self.lrs == lr)[0]) for lr in self.best_lr]
        return max(index) - min(index)

    def describe(self) -> str:
        if self.shared:
            return ("one learning rate is within the seed spread of the best at every width: "
                    + ", ".join(f"{lr:g}" for lr in self.shared))
        return "no learning rate is within the seed spread of the best at every width"


def shared_learning_rates(losses, lrs) -> TransferVerdict:
    """``losses[seed, width, lr]`` (diverged runs may be NaN or inf) -> :class:`TransferVerdict`."""
    losses = _seed_axis(losses, "losses", 3)
    lrs = np.asarray(lrs, dtype=float)
    if losses.shape[2] != len(lrs):
        raise ValueError(f"losses has {losses.shape[2]} learning rates on its last axis, lrs has {len(lrs)}.")
    finite = np.where(np.isfinite(losses), losses, np.nan)
    mean = finite.mean(axis=0)  # NaN where any seed diverged: never good
    best = np.array([np.nanargmin(row) if np.isfinite(row).any() else -1 for row in mean])
    if (best < 0).any():
        raise ValueError("every learning rate diverged at some width: widen the grid downwards.")
    width_index = np.arange(len(best))
    best_loss = mean[width_index, best]
    spread = finite[:, width_index, best].max(axis=0) - finite[:, width_index, best].min(axis=0)
    tolerance = np.maximum(spread, ROUNDING * np.abs(best_loss))
    good = (mean - best_loss[:, None]) <= tolerance[:, None]
    good &= np.isfinite(mean)
    shared = [float(lr) for lr, ok in zip(lrs, good.all(axis=0)) if ok]
    return TransferVerdict(lrs, lrs[best], best_loss, tolerance, good, shared)


def clear_winner(values, names, *, lower_is_better: bool = True) -> str | None:
    """``values[seed, method]``: the name of the method that beats every other on every seed
    (by more than float rounding), or None ("no clear winner")."""
    values = _seed_axis(values, "values", 2)
    names = list(names)
    if values.shape[1] != len(names):
        raise ValueError(f"values has {values.shape[1]} methods, names has {len(names)}.")
    signed = values if lower_is_better else -values
    best = int(np.argmin(signed.mean(axis=0)))
    others = [m for m in range(len(names)) if m != best]
    margin = signed[:, others] - signed[:, [best]]
    rounding = ROUNDING * np.abs(signed[:, [best]]) + 1e-300
    return names[best] if (margin > rounding).all() else None


# ------------------------------------------------------------------------------- paired comparisons
ALPHA = 0.05  # two-sided level of the paired t-test
POWER = 0.8  # the probability of detection that defines the smallest detectable effect


def t_cdf(t: float, df: int) -> float:
    """``P(T <= t)`` for Student's t with ``df`` degrees of freedom (a positive integer), in
    closed form (Abramowitz and Stegun 26.7.3 and 26.7.4: finite sums in ``theta = atan(t / sqrt(df))``)."""
    if int(df) != df or df < 1:
        raise ValueError(f"df={df}: the closed form needs a positive integer number of degrees of freedom.")
    df = int(df)
    theta = math.atan(t / math.sqrt(df))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2:  # odd: 2/pi (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...)), df - 2 powers of cos at most
        term, total = math.cos(theta), 0.0
        for k in range(1, (df - 1) // 2 + 1):
            total += term
            term *= cos2 * (2 * k) / (2 * k + 1)
        inside = 2 / math.pi * (theta + sin * total)
    else:  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...), up to cos^(df - 2)
        term, total = 1.0, 0.0
        for k in range(df // 2):
            total += term
            term *= cos2 * (2 * k + 1) / (2 * k + 2)
        inside = sin * total
    return 0.5 * (1 + inside)  # inside = P(|T| < t), signed like t


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on
    :func:`t_cdf`, to about 1e-12 relative). ``t_quantile(0.975, 3)`` is 3.182."""
    if not 0 < p < 1:
        raise ValueError(f"p={p}: a quantile needs 0 < p < 1.")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2 * high
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * high:
            break
    return 0.5 * (low + high)


@dataclass(frozen=True)
class PairedComparison:
    """An effect measured once per seed (paired: every seed's value is a difference between two
    runs that share that seed's initial weights and batches) and the two-sided paired t-test of
    "its mean is 0" at level ``alpha``.

    * ``mean``, ``se``: the seeds' mean and its standard error ``std(ddof=1) / sqrt(n)``.
    * ``threshold = t_{1-alpha/2, n-1} * se``: the effect is *detected* when ``|mean|`` exceeds it.
    * ``detectable = (t_{1-alpha/2, n-1} + t_{power, n-1}) * se``: the smallest detectable
      effect. A true effect of this size is detected with probability about ``power`` (80%), if
      the seeds' standard deviation is the one measured here (the usual approximation that puts
      a central t in place of the noncentral one; simulated with normal noise it gives 77% at
      3 seeds, 78% at 4, 79% at 6). The standard error is itself estimated from these few
      seeds, so ``detectable`` is an estimate too, and with few seeds a rough one.

    An effect that is not detected may still be as large as ``detectable`` (or larger, with
    probability about 1 - power): "not detected" is never "absent" or "small"."""

    per_seed: tuple
    mean: float
    se: float
    threshold: float
    detectable: float
    alpha: float = ALPHA
    power: float = POWER

    @property
    def n(self) -> int:
        return len(self.per_seed)

    @property
    def detected(self) -> bool:
        return bool(abs(self.mean) > self.threshold)

    @property
    def direction(self) -> int:
        """+1 or -1: the sign of a detected effect; 0 when nothing is detected."""
        return int(np.sign(self.mean)) if self.detected else 0

    def describe(self, increase: str = "positive", decrease: str = "negative", digits: int = 3) -> str:
        """``"+0.106 +- 0.018: detected (4 seeds), <increase>"``, or ``"-0.017 +- 0.017: not
        detected with 4 seeds; smallest detectable effect 0.072 (80% power, two-sided 5% test)"``."""
        measured = f"{self.mean:+.{digits}f} +- {self.se:.{digits}f}"
        if self.detected:
            return f"{measured}: detected ({self.n} seeds), {increase if self.mean > 0 else decrease}"
        return (f"{measured}: not detected with {self.n} seeds; smallest detectable effect "
                f"{self.detectable:.{digits}f} ({self.power:.0%} power, two-sided {self.alpha:.0%} test)")

    def as_dict(self) -> dict:
        return dict(per_seed=list(self.per_seed), mean=self.mean, se=self.se, threshold=self.threshold,
                    detectable=self.detectable, detected=self.detected, direction=self.direction,
                    alpha=self.alpha, power=self.power)


def paired_comparison(per_seed, *, alpha: float = ALPHA, power: float = POWER) -> PairedComparison:
    """``per_seed``: an effect measured on each of n >= 2 seeds (e.g. a loss of method B minus
    that of method A on the same seed) -> :class:`PairedComparison`."""
    per_seed = np.asarray(per_seed, dtype=float)
    if per_seed.ndim != 1 or len(per_seed) < 2:
        raise ValueError(f"per_seed has shape {per_seed.shape}: a paired comparison needs one value per seed, "
                         "at least 2 seeds.")
    if not np.isfinite(per_seed).all():
        raise ValueError("a paired comparison needs finite values on every seed (a diverged run has none).")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha={alpha}, power={power}: both must lie in (0, 1).")
    n = len(per_seed)
    mean, se = float(per_seed.mean()), float(per_seed.std(ddof=1) / math.sqrt(n))
    t_alpha, t_power = t_quantile(1 - alpha / 2, n - 1), t_quantile(power, n - 1)
    return PairedComparison(tuple(float(v) for v in per_seed), mean, se, t_alpha * se, (t_alpha + t_power) * se,
                            alpha, power)


# ------------------------------------------------------------------------------- a 2x2 ablation
@dataclass(frozen=True)
class SwitchAblation:
    """A 2x2 ablation of two on/off switches ``a`` and ``b``, from every seed's value in each of
    the four cells. Effects are "dropping" a switch: the value with it off minus the value with
    it on, on the same seed.

    * ``simple[(switch, other_on)]``: dropping ``switch`` while the other switch is on
      (``other_on=True``) or off: two simple effects per switch.
    * ``interaction``: dropping ``a`` with ``b`` off minus dropping ``a`` with ``b`` on, per seed,
      which is the same number as dropping ``b`` with ``a`` off minus with ``a`` on (and as
      dropping both minus the sum of dropping each alone). Positive: each drop raises the value
      more (or lowers it less) when the other switch is off. Where it is detected, the effect of
      each switch depends on the other, and an effect averaged over the other switch (a main
      effect) describes neither setting.
    """

    names: tuple
    simple: dict
    interaction: PairedComparison

    def label(self, switch: str, other_on: bool) -> str:
        other = self.names[1] if switch == self.names[0] else self.names[0]
        return f"dropping {switch} {'with' if other_on else 'without'} {other}"

    @property
    def interaction_label(self) -> str:
        return f"interaction of {self.names[0]} and {self.names[1]}"

    def as_dict(self) -> dict:
        """Every comparison by its label (JSON-ready)."""
        table = {self.label(s, on): c.as_dict() for (s, on), c in self.simple.items()}
        table[self.interaction_label] = self.interaction.as_dict()
        return table


def switch_ablation(cells, names=("a", "b"), *, alpha: float = ALPHA, power: float = POWER) -> SwitchAblation:
    """``cells[(a_on, b_on)]``: one value per seed (the same seeds, in the same order, in all four
    cells) -> :class:`SwitchAblation`."""
    keys = [(True, True), (True, False), (False, True), (False, False)]
    if sorted(cells) != sorted(keys):
        raise ValueError(f"cells needs exactly the keys {keys} ((a_on, b_on)), got {sorted(cells)}.")
    cell = {key: np.asarray(cells[key], dtype=float) for key in keys}
    if len({v.shape for v in cell.values()}) != 1:
        raise ValueError("every cell needs the same seeds: shapes " + str({k: v.shape for k, v in cell.items()}))
    a, b = names
    compare = functools.partial(paired_comparison, alpha=alpha, power=power)
    simple = {(a, True): compare(cell[(False, True)] - cell[(True, True)]),
              (a, False): compare(cell[(False, False)] - cell[(True, False)]),
              (b, True): compare(cell[(True, False)] - cell[(True, True)]),
              (b, False): compare(cell[(False, False)] - cell[(False, True)])}
    interaction = compare((cell[(False, False)] - cell[(True, False)]) - (cell[(False, True)] - cell[(True, True)]))
    return SwitchAblation(tuple(names), simple, interaction)


# ------------------------------------------------------------------------------- select, then compare
def choose_rates(losses) -> np.ndarray:
    """``losses[method, seed, rate]`` -> per method, the index of the rate with the lowest
    seed-mean loss. A rate where any seed diverged (NaN or inf) is never chosen."""
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 3:
        raise ValueError(f"losses must have 3 axes (method, seed, rate), got shape {losses.shape}.")
    mean = np.where(np.isfinite(losses).all(axis=1), losses.mean(axis=1), np.nan)
    if np.isnan(mean).all(axis=1).any():
        raise ValueError("some method diverged at every rate on the seeds that choose: widen the grid downwards.")
    return np.nanargmin(mean, axis=1)


@dataclass
class SelectThenCompare:
    """Learning rates chosen on the seeds ``choose_on``, methods compared on the disjoint seeds
    ``compare_on``.

    ``grid[method, seed, rate]``: the losses on ``choose_on``; ``chosen[method]``: the index of
    each method's rate (:func:`choose_rates` of ``grid``); ``compared[seed, method]``: each
    method at its chosen rate on ``compare_on``."""

    names: tuple
    rates: np.ndarray
    choose_on: tuple
    compare_on: tuple
    grid: np.ndarray
    chosen: np.ndarray
    compared: np.ndarray

    @property
    def chosen_rates(self) -> dict:
        return {name: float(self.rates[k]) for name, k in zip(self.names, self.chosen)}

    def at_grid_edge(self) -> list:
        """The methods whose chosen rate is the smallest or the largest of the grid."""
        return [name for name, k in zip(self.names, self.chosen) if k in (0, len(self.rates) - 1)]

    def values(self, name) -> np.ndarray:
        """One method's losses at its chosen rate, per seed of ``compare_on``."""
        return self.compared[:, self.names.index(name)]


def select_then_compare(names, rates, run, *, choose_on, compare_on) -> SelectThenCompare:
    """``run(name, rates, seeds) -> losses[seed, rate]`` trains one method. Each method runs the
    whole grid ``rates`` on the seeds ``choose_on``, its rate is chosen there
    (:func:`choose_rates`), and it runs again at that rate alone on the seeds ``compare_on``,
    which share no seed with ``choose_on``."""
    names, rates = tuple(names), np.asarray(rates, dtype=float)
    choose_on, compare_on = tuple(choose_on), tuple(compare_on)
    if set(choose_on) & set(compare_on):
        raise ValueError(f"seeds {sorted(set(choose_on) & set(compare_on))} both choose the rates and compare: "
                         "the two sets must be disjoint.")
    if len(compare_on) < 2:
        raise ValueError(f"compare_on has {len(compare_on)} seed(s): a noise-aware comparison needs at least 2.")
    grid = np.array([np.asarray(run(name, tuple(rates), choose_on), dtype=float) for name in names])
    if grid.shape != (len(names), len(choose_on), len(rates)):
        raise ValueError(f"run returned losses of shape {grid.shape[1:]}, expected (seeds, rates) = "
                         f"{(len(choose_on), len(rates))}.")
    chosen = choose_rates(grid)
    compared = np.stack([np.asarray(run(name, (float(rates[k]),), compare_on), dtype=float)[:, 0]
                         for name, k in zip(names, chosen)], axis=1)
    return SelectThenCompare(names, rates, choose_on, compare_on, grid, chosen, compared)


# ------------------------------------------------------------------------------- transfer, paired
@dataclass
class PairedTransfer:
    """Per width, every learning rate against that width's best (lowest seed mean), each a
    paired comparison over the seeds (:func:`paired_comparison` of ``loss(rate) - loss(best)``).

    * ``best[width]``: the index of the width's best rate; ``tolerance[width]``: the seeds'
      spread (max - min) at that rate, the scale of the noise.
    * ``comparisons[width][rate]``: the :class:`PairedComparison`, or None for the best rate
      itself and for a rate that diverged on some seed (which counts as worse).
    * ``worse[width, rate]``: detected worse than the best (or diverged). ``shared``: the rates
      never detected worse at any width.

    A rate detected worse at some width fails to transfer there, beyond the noise: the test can
    fail. A rate in ``shared`` is not shown to be as good as the best: it may be worse by up to
    the smallest detectable effect of each comparison. The best rate is chosen on the same
    seeds, which biases every difference upwards (towards "worse")."""

    lrs: np.ndarray
    best: np.ndarray
    tolerance: np.ndarray
    comparisons: list
    worse: np.ndarray
    shared: list

    @property
    def transfers(self) -> bool:
        return bool(self.shared)

    def detectable_range(self, width_index: int) -> tuple:
        """The smallest and the largest smallest-detectable-effect of the rates not detected worse
        at that width (None if every other rate was detected worse)."""
        values = [c.detectable for c in self.comparisons[width_index] if c is not None and not c.detected]
        return (min(values), max(values)) if values else None

    def describe(self) -> str:
        if self.shared:
            return ("not detected worse than the best at any width: " + ", ".join(f"{lr:g}" for lr in self.shared))
        return "every learning rate is detected worse than the best at some width"


def paired_transfer(losses, lrs, *, alpha: float = ALPHA, power: float = POWER) -> PairedTransfer:
    """``losses[seed, width, lr]`` (diverged runs NaN or inf) -> :class:`PairedTransfer`."""
    losses = _seed_axis(losses, "losses", 3)
    lrs = np.asarray(lrs, dtype=float)
    if losses.shape[2] != len(lrs):
        raise ValueError(f"losses has {losses.shape[2]} learning rates on its last axis, lrs has {len(lrs)}.")
    finite = np.isfinite(losses).all(axis=0)  # [width, lr]
    mean = np.where(finite, losses.mean(axis=0, where=np.isfinite(losses)), np.nan)
    if (~finite).all(axis=1).any():
        raise ValueError("every learning rate diverged at some width: widen the grid downwards.")
    best = np.nanargmin(mean, axis=1)
    comparisons, worse, tolerance = [], np.zeros(mean.shape, dtype=bool), []
    for w, b in enumerate(best):
        tolerance.append(float(losses[:, w, b].max() - losses[:, w, b].min()))
        row = []
        for k in range(len(lrs)):
            if k == b or not finite[w, k]:
                row.append(None)
                worse[w, k] = not finite[w, k]
                continue
            comparison = paired_comparison(losses[:, w, k] - losses[:, w, b], alpha=alpha, power=power)
            row.append(comparison)
            worse[w, k] = comparison.detected and comparison.mean > 0
        comparisons.append(row)
    shared = [float(lr) for lr, bad in zip(lrs, worse.any(axis=0)) if not bad]
    return PairedTransfer(lrs, best, np.array(tolerance), comparisons, worse, shared)


# ------------------------------------------------------------------------------- several tests at once
@dataclass(frozen=True)
class SeveralTests:
    """Several paired comparisons printed together (one table), each a two-sided t-test at
    ``alpha`` with no correction for their number ``m``.

    If no effect were real, each test would still detect one with probability ``alpha``, so
    the chance that at least one of them does is up to ``m * alpha`` (the union bound;
    ``1 - (1 - alpha)^m`` for independent tests). The Bonferroni correction tests each at
    ``alpha / m`` instead: detected when ``|mean| / se > t_{1 - alpha/(2m), n-1}``, which keeps that
    chance below ``alpha``. ``corrected`` lists the effects detected at both levels; ``marginal``
    those detected at ``alpha`` alone (a detection that the number of tests can explain)."""

    names: tuple
    t: tuple  # |mean| / se of each comparison
    alpha: float
    t_uncorrected: tuple  # t_{1 - alpha/2, n-1} per comparison
    t_corrected: tuple  # t_{1 - alpha/(2m), n-1} per comparison
    detected: tuple

    @property
    def m(self) -> int:
        return len(self.names)

    @property
    def chance_of_a_false_detection(self) -> float:
        """``1 - (1 - alpha)^m``: the chance of at least one detection among m independent null effects."""
        return 1 - (1 - self.alpha) ** self.m

    @property
    def corrected(self) -> list:
        return [n for n, t, c, d in zip(self.names, self.t, self.t_corrected, self.detected) if d and t > c]

    @property
    def marginal(self) -> list:
        return [n for n, t, c, d in zip(self.names, self.t, self.t_corrected, self.detected) if d and t <= c]

    def describe(self) -> str:
        """One paragraph: how many tests, the chance of a false detection, and which detections
        survive the Bonferroni level (with each one's |t| beside the two thresholds)."""
        df_thresholds = sorted({(u, c) for u, c in zip(self.t_uncorrected, self.t_corrected)})
        levels = "; ".join(f"|t| > {u:.2f} per test, {c:.2f} corrected" for u, c in df_thresholds)
        text = (f"{self.m} tests in this table, each at {self.alpha:.0%} with no correction for their number: "
                f"if no effect were real, at least one would be detected with probability "
                f"{self.chance_of_a_false_detection:.0%} (independent tests). Bonferroni level "
                f"{self.alpha:.0%} / {self.m} = {self.alpha / self.m:.2%} per test ({levels}): ")
        kept = ", ".join(f"{n} (|t| = {t:.2f})" for n, t in zip(self.names, self.t) if n in self.corrected)
        lost = ", ".join(f"{n} (|t| = {t:.2f})" for n, t in zip(self.names, self.t) if n in self.marginal)
        return (text + f"still detected: {kept or 'none'}; marginal (detected only without the correction): "
                + (lost or "none"))

    def as_dict(self) -> dict:
        return dict(names=list(self.names), t=list(self.t), alpha=self.alpha, t_corrected=list(self.t_corrected),
                    corrected=self.corrected, marginal=self.marginal)


def several_tests(comparisons: dict, *, alpha: float = ALPHA) -> SeveralTests:
    """``{name: PairedComparison}`` printed together -> :class:`SeveralTests` (Bonferroni over
    their number). Every comparison must have been tested at ``alpha``."""
    names = tuple(comparisons)
    if not names:
        raise ValueError("several_tests needs at least one comparison.")
    values = [comparisons[n] for n in names]
    if any(abs(c.alpha - alpha) > 1e-12 for c in values):
        raise ValueError(f"every comparison must be tested at alpha={alpha}.")
    m = len(names)
    t = tuple(abs(c.mean) / c.se if c.se > 0 else math.inf for c in values)
    return SeveralTests(names, t, alpha, tuple(t_quantile(1 - alpha / 2, c.n - 1) for c in values),
                        tuple(t_quantile(1 - alpha / (2 * m), c.n - 1) for c in values),
                        tuple(c.detected for c in values))
