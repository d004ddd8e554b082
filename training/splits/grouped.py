"""Patient-grouped multi-label stratification. Pure functions on tables and arrays, no I/O.

Why not a library: iterative-stratification's MultilabelStratifiedKFold accepts `groups` and
silently ignores it (patients leak across folds), and sklearn's StratifiedGroupKFold is single-label.
So the unit here is the patient: every patient becomes one row of counts (clips, labelled clips,
positive clips per pattern, clips positive for each pattern pair), and whole patients are dealt
into groups:

1. a count-weighted iterative stratification (Sechidis et al., ECML-PKDD 2011, with counts as the
   demand instead of 0/1 labels: a binary patient matrix saturates, on the demo 80-100% of the
   patients have a positive clip of each pattern), rarest label first, largest contributor first;
2. a local search (best move or swap of patients between groups per step) that lowers `split_cost`:
   per-group clip prevalence deviation from the overall value, clip-count imbalance and pattern
   pairs missing from a group; repeated from a few seeded random starts, the lowest cost wins (on
   the demo's 9 fold patients this reaches the exhaustive optimum of the cost).

The internal test is the same problem with two groups (test, rest) of exact patient counts; the
folds are dealt from the rest. Patients already placed (a previous split, for stability) are
locked: only new patients are dealt.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

TEMPORAL = "temporal"
INTERNAL_TEST = "internal_test"
PAIR_SEP = " + "


def fold_role(k: int) -> str:
    return f"fold{k}"


@dataclass(frozen=True)
class Search:
    """Local-search knobs (split.repair_iterations, size_weight, pair_weight, max_swaps)."""

    iterations: int = 200  # best-improvement steps at most (each step: all moves + up to max_swaps swaps)
    size_weight: float = 0.5  # cost of the worst group's relative clip-count error (0.2 off -> 0.1)
    pair_weight: float = 0.02  # cost per (group, co-occurring pattern pair) with no such clip
    max_swaps: int = 20000  # swap candidates scored per step (sampled with the seed above this)
    restarts: int = 4  # extra local searches from random balanced starts; the lowest cost wins


@dataclass(frozen=True)
class PatientMatrix:
    """Per-patient counts; N patients sorted by id, P patterns, Q = P(P-1)/2 pattern pairs.

    counts: (N, F) float64 with F = 1 + 2P + Q columns: [clips, labelled_1..P, positive_1..P,
    pair_1..Q]; `labelled` counts clips with a decided label for that pattern (prevalence is
    positives / labelled), a pair counts clips positive for both of its patterns.
    """

    patients: np.ndarray  # (N,) str
    temporal: np.ndarray  # (N,) bool: the patient has a clip from the temporal period
    mixed: np.ndarray  # (N,) bool: the patient has clips from both periods
    counts: np.ndarray  # (N, F) float64
    patterns: tuple[str, ...]

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple(itertools.combinations(self.patterns, 2))

    @property
    def layout(self) -> "Layout":
        return Layout(len(self.patterns))


@dataclass(frozen=True)
class Layout:
    """Column indices into PatientMatrix.counts for P patterns."""

    n_patterns: int

    @property
    def labelled(self) -> slice:
        return slice(1, 1 + self.n_patterns)

    @property
    def positive(self) -> slice:
        return slice(1 + self.n_patterns, 1 + 2 * self.n_patterns)

    @property
    def pairs(self) -> slice:
        return slice(1 + 2 * self.n_patterns, None)


def clip_table(manifest: pd.DataFrame, consensus: pd.DataFrame, patterns: tuple[str, ...]) -> pd.DataFrame:
    """Manifest clips with one float label column per pattern (1, 0, NaN = undecided or not labelled).

    manifest: clip_id, video_id, patient_id, period (one row per clip); consensus: long CONSENSUS
    table (clip_id, pattern, label Int8 with <NA>), one method. Returns C rows sorted by clip_id:
    clip_id, video_id, patient_id, period, *patterns. Clips of excluded videos keep NaN labels:
    they still get a role (a patient's clips never straddle roles).
    """
    keys = ["clip_id", "video_id", "patient_id", "period"]
    clips = manifest[keys].astype(str).drop_duplicates("clip_id").sort_values("clip_id").reset_index(drop=True)
    methods = consensus["method"].unique() if "method" in consensus else []
    if len(methods) > 1:
        raise ValueError(f"consensus holds several methods {sorted(methods)}: keep one (labels.consensus)")
    unknown = sorted(set(consensus["clip_id"].astype(str)) - set(clips["clip_id"]))
    if unknown:
        raise ValueError(f"{len(unknown)} consensus clip(s) are not in the clip manifest (e.g. {unknown[0]}): "
                         "the labels are stale, rerun the labels stage")
    bad = sorted(set(consensus["pattern"]) - set(patterns))
    if bad:
        raise ValueError(f"consensus has unknown pattern(s) {bad}; expected {list(patterns)}")
    wide = pd.DataFrame(index=pd.Index([], name="clip_id"), columns=list(patterns), dtype="float64")
    if len(consensus):
        wide = (consensus.assign(clip_id=consensus["clip_id"].astype(str),
                                 label=pd.to_numeric(consensus["label"]).astype("float64"))
                .pivot_table(index="clip_id", columns="pattern", values="label", aggfunc="max", dropna=False))
    wide = wide.reindex(index=clips["clip_id"], columns=list(patterns))
    for p in patterns:
        clips[p] = wide[p].to_numpy(dtype="float64", na_value=np.nan)
    return clips


def patient_matrix(clips: pd.DataFrame, patterns: tuple[str, ...]) -> PatientMatrix:
    """clip_table rows -> PatientMatrix (one row per patient, sorted by patient_id)."""
    labels = clips[list(patterns)].to_numpy(dtype="float64")  # (C, P)
    pos = labels == 1
    pair_idx = list(itertools.combinations(range(len(patterns)), 2))
    per_clip = np.column_stack([
        np.ones(len(clips)), ~np.isnan(labels), pos,
        *([pos[:, i] & pos[:, j] for i, j in pair_idx] or [np.zeros((len(clips), 0))]),
    ]).astype("float64")
    patient = clips["patient_id"].astype(str).to_numpy()
    ids, inverse = np.unique(patient, return_inverse=True)
    counts = np.zeros((len(ids), per_clip.shape[1]))
    np.add.at(counts, inverse, per_clip)
    temporal = np.zeros(len(ids), bool)
    development = np.zeros(len(ids), bool)
    period = clips["period"].astype(str).to_numpy()
    np.logical_or.at(temporal, inverse, period == TEMPORAL)
    np.logical_or.at(development, inverse, period != TEMPORAL)
    return PatientMatrix(ids.astype(str), temporal, temporal & development, counts, tuple(patterns))


def split_cost(sums: np.ndarray, totals: np.ndarray, fractions: np.ndarray, layout: Layout,
               search: Search) -> np.ndarray:
    """Cost of candidate partitions: sums (B, G, F) group count sums -> (B,) float64, lower is better.

    Per pattern: the largest and the mean absolute deviation of a group's clip prevalence from the
    overall prevalence (the mean breaks ties the max leaves flat); plus size_weight times the worst
    relative clip-count error against the group's target fraction; plus pair_weight per group that
    lacks a pattern pair present overall (so every fold can validate co-occurrence).
    """
    lab, pos = sums[..., layout.labelled], sums[..., layout.positive]
    overall = np.divide(totals[layout.positive], totals[layout.labelled],
                        out=np.zeros(layout.n_patterns), where=totals[layout.labelled] > 0)
    prev = np.divide(pos, lab, out=np.zeros_like(pos), where=lab > 0)
    dev = np.abs(prev - overall)  # (B, G, P)
    prevalence = (dev.max(axis=1) + dev.mean(axis=1)).sum(axis=-1)
    target = np.maximum(fractions * totals[0], 1e-9)
    size = np.abs(sums[..., 0] / target - 1.0).max(axis=-1)
    present = totals[layout.pairs] > 0
    missing = ((sums[..., layout.pairs] == 0) & present).sum(axis=(-1, -2))
    return prevalence + search.size_weight * size + search.pair_weight * missing


def _greedy(x: np.ndarray, groups: np.ndarray, fractions: np.ndarray, caps: np.ndarray, layout: Layout,
            rng: np.random.Generator) -> np.ndarray:
    """Deal the free patients (groups == -1) one by one: x (N, F) counts -> (N,) group ids.

    Rarest remaining label first; among its carriers the largest count first; into the allowed
    group (under its patient cap) with the largest unmet demand for that label, then for clips.
    Ties go by a seeded random rank, so the seed changes the split and nothing else does.
    """
    groups = groups.copy()
    n_groups = len(fractions)
    sums = np.zeros((n_groups, x.shape[1]))
    np.add.at(sums, groups[groups >= 0], x[groups >= 0])
    count = np.bincount(groups[groups >= 0], minlength=n_groups)
    demand = fractions[:, None] * x.sum(axis=0)[None, :]
    rank = rng.permutation(len(x))
    label_cols = np.r_[np.arange(x.shape[1])[layout.positive], np.arange(x.shape[1])[layout.pairs]]
    while (free := np.flatnonzero(groups < 0)).size:
        remaining = x[free][:, label_cols].sum(axis=0)
        col = int(label_cols[np.argmin(np.where(remaining > 0, remaining, np.inf))]) if remaining.any() else 0
        carriers = free[x[free, col] > 0] if col else free
        p = carriers[np.lexsort((rank[carriers], -x[carriers, col]))[0]]
        allowed = count < caps
        if free.size <= np.sum(allowed & (count == 0)):  # the last patients go to still-empty groups
            allowed &= count == 0
        need = demand - sums
        order = np.lexsort((np.arange(n_groups), -need[:, 0], -need[:, col]))
        g = next(int(g) for g in order if allowed[g])
        groups[p] = g
        sums[g] += x[p]
        count[g] += 1
    return groups


def _candidates(groups: np.ndarray, free: np.ndarray, count: np.ndarray, caps: np.ndarray, max_swaps: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moves (p -> group b) and swaps (p <-> q) of free patients: arrays (p, q or -1, b or -1)."""
    n_groups = len(count)
    p, b = np.meshgrid(free, np.arange(n_groups), indexing="ij")
    p, b = p.ravel(), b.ravel()
    # A move keeps every group non-empty and under its patient cap (the internal test has an exact size).
    ok = (groups[p] != b) & (count[groups[p]] > 1) & (count[b] < caps[b])
    moves = (p[ok], np.full(ok.sum(), -1), b[ok])
    i, j = np.triu_indices(free.size, 1)
    sp, sq = free[i], free[j]
    keep = groups[sp] != groups[sq]
    sp, sq = sp[keep], sq[keep]
    if sp.size > max_swaps:
        pick = np.sort(rng.choice(sp.size, max_swaps, replace=False))
        sp, sq = sp[pick], sq[pick]
    return (np.r_[moves[0], sp], np.r_[moves[1], sq], np.r_[moves[2], np.full(sp.size, -1)])


def _repair(x: np.ndarray, groups: np.ndarray, free: np.ndarray, fractions: np.ndarray, caps: np.ndarray,
            layout: Layout, search: Search, rng: np.random.Generator) -> np.ndarray:
    """Best-improvement local search over moves and swaps of free patients; (N,) group ids."""
    groups = groups.copy()
    n_groups = len(fractions)
    totals = x.sum(axis=0)
    sums = np.zeros((n_groups, x.shape[1]))
    np.add.at(sums, groups, x)
    current = split_cost(sums[None], totals, fractions, layout, search)[0]
    free_idx = np.flatnonzero(free)
    for _ in range(search.iterations):
        count = np.bincount(groups, minlength=n_groups)
        p, q, b = _candidates(groups, free_idx, count, caps, search.max_swaps, rng)
        if not p.size:
            break
        is_swap = q >= 0
        dest = np.where(is_swap, groups[np.maximum(q, 0)], b)
        delta = np.where(is_swap[:, None], x[np.maximum(q, 0)] - x[p], -x[p])  # change to p's group
        trial = np.repeat(sums[None], p.size, axis=0)
        rows = np.arange(p.size)
        trial[rows, groups[p]] += delta
        trial[rows, dest] -= delta
        cost = split_cost(trial, totals, fractions, layout, search)
        best = int(np.argmin(cost))
        if cost[best] >= current - 1e-12:
            break
        current, sums = cost[best], trial[best]
        if is_swap[best]:
            groups[p[best]], groups[q[best]] = groups[q[best]], groups[p[best]]
        else:
            groups[p[best]] = b[best]
    return groups


def _random_start(groups: np.ndarray, fractions: np.ndarray, caps: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Free patients (-1) in random order, each to the allowed group furthest below its share."""
    groups = groups.copy()
    count = np.bincount(groups[groups >= 0], minlength=len(fractions)).astype(float)
    for p in rng.permutation(np.flatnonzero(groups < 0)):
        load = np.where(count < caps, count / fractions, np.inf)
        g = int(np.argmin(load))
        groups[p] = g
        count[g] += 1
    return groups


def partition(x: np.ndarray, fractions: np.ndarray, caps: np.ndarray, locked: np.ndarray, layout: Layout,
              search: Search, rng: np.random.Generator) -> np.ndarray:
    """Deal N patients into G groups: x (N, F) counts, fractions (G,) target clip shares, caps (G,)
    patient caps, locked (N,) int group id or -1 (free) -> (N,) int group ids; locked ones unchanged.

    The iterative-stratification start and `search.restarts` random balanced starts are each
    repaired; the lowest split_cost wins (the local search stops in local minima on few patients).
    """
    totals = x.sum(axis=0)
    best, best_cost = None, np.inf
    for attempt in range(1 + search.restarts):
        start = _greedy(x, locked, fractions, caps, layout, rng) if attempt == 0 else \
            _random_start(locked, fractions, caps, rng)
        groups = _repair(x, start, locked < 0, fractions, caps, layout, search, rng)
        sums = np.zeros((len(fractions), x.shape[1]))
        np.add.at(sums, groups, x)
        cost = split_cost(sums[None], totals, fractions, layout, search)[0]
        if cost < best_cost - 1e-12:
            best, best_cost = groups, cost
    return best


def n_internal_test(n_development: int, test_fraction: float) -> int:
    """Patients in the internal test group: test_fraction of the development patients, at least 1."""
    return max(1, int(np.floor(test_fraction * n_development + 0.5)))


def _check_size(n_development: int, n_test: int, n_folds: int) -> None:
    if n_development < n_test + n_folds:
        raise ValueError(
            f"{n_development} development patient(s) cannot fill an internal test group of {n_test} and {n_folds} "
            f"folds of at least one patient each: need {n_test + n_folds} or more; lower split.n_folds "
            "(or split.test_fraction) or add patients")


def _previous_groups(pm: PatientMatrix, dev: np.ndarray, previous: dict[str, str], n_folds: int,
                     notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Locked groups of the development patients from a previous split: (holdout (D,), fold (D,)), -1 = free."""
    folds = {fold_role(k): k for k in range(n_folds)}
    unknown = sorted(set(previous.values()) - {TEMPORAL, INTERNAL_TEST, *folds})
    if unknown:
        raise ValueError(f"the previous split has role(s) {unknown} that split.n_folds={n_folds} does not make: "
                         "set split.reshuffle: true to re-split every patient, or point split.previous at a split "
                         "made with the same n_folds")
    roles = [previous.get(pid) for pid in pm.patients[dev]]
    holdout = np.array([0 if r == INTERNAL_TEST else 1 if r in folds else -1 for r in roles])
    fold = np.array([folds.get(r, -1) for r in roles])
    moved = sum(r == TEMPORAL for r in roles)
    if moved:
        notes.append(f"{moved} patient(s) were temporal in the previous split and are development now: placed anew")
    now_temporal = sum(previous.get(pid, TEMPORAL) != TEMPORAL for pid in pm.patients[pm.temporal])
    if now_temporal:
        notes.append(f"{now_temporal} patient(s) of the previous split's development set have temporal clips now: "
                     "moved to temporal")
    return holdout, fold


def assign_roles(pm: PatientMatrix, n_folds: int, test_fraction: float, seed: int, search: Search = Search(),
                 previous: dict[str, str] | None = None) -> tuple[np.ndarray, list[str]]:
    """One role per patient: (N,) str array aligned with pm.patients, and notes for the report.

    temporal: every patient with a temporal clip (a patient with both periods goes here whole, so
    no patient straddles roles; noted). internal_test: n_internal_test(...) development patients,
    stratified. fold0..fold{n_folds-1}: the rest, stratified. `previous` (patient_id -> role) locks
    the patients it names in their roles; only patients it lacks are dealt (stable assignment).
    """
    notes: list[str] = []
    if pm.mixed.any():
        notes.append(f"{int(pm.mixed.sum())} patient(s) have development and temporal videos: all their clips "
                     "are in the temporal set")
    roles = np.where(pm.temporal, TEMPORAL, "").astype(object)
    dev = np.flatnonzero(~pm.temporal)
    n_test = n_internal_test(dev.size, test_fraction)
    _check_size(dev.size, n_test, n_folds)
    holdout, fold = _previous_groups(pm, dev, previous or {}, n_folds, notes)
    rng = np.random.default_rng(seed)
    x = pm.counts[dev]
    locked_test, locked_rest = int(np.sum(holdout == 0)), int(np.sum(holdout == 1))
    cap_test = min(max(n_test, locked_test), dev.size - locked_rest)
    if cap_test != n_test:
        notes.append(f"internal test keeps {cap_test} patient(s) of the previous split (test_fraction asks {n_test})")
    caps = np.array([cap_test, dev.size - cap_test])
    in_rest = partition(x, caps / dev.size, caps, holdout, pm.layout, search, rng) == 1
    roles[dev[~in_rest]] = INTERNAL_TEST
    pool = dev[in_rest]
    if pool.size < n_folds:
        raise ValueError(f"only {pool.size} patient(s) are left for {n_folds} folds after the internal test: "
                         "set split.reshuffle: true, lower split.n_folds, or add patients")
    fractions = np.full(n_folds, 1.0 / n_folds)
    groups = partition(x[in_rest], fractions, np.full(n_folds, pool.size), fold[in_rest], pm.layout, search, rng)
    roles[pool] = [fold_role(g) for g in groups]
    return roles.astype(str), notes


def seed_kfold_roles(pm: PatientMatrix, n_folds: int, test_fraction: float, seed: int) -> np.ndarray:
    """The seed's approach on the same patients: (N,) str roles.

    train_test_split of the development patients (same internal-test size as ours, so the fold
    pools are comparable; the seed itself held out 20%), then KFold(n_folds, shuffle=True) on the
    rest, both with random_state=seed: grouped by patient, not stratified.
    """
    from sklearn.model_selection import KFold, train_test_split

    roles = np.where(pm.temporal, TEMPORAL, "").astype(object)
    dev = np.flatnonzero(~pm.temporal)
    n_test = n_internal_test(dev.size, test_fraction)
    _check_size(dev.size, n_test, n_folds)
    rest, test = train_test_split(dev, test_size=n_test, random_state=seed)
    roles[test] = INTERNAL_TEST
    for k, (_, val) in enumerate(KFold(n_folds, shuffle=True, random_state=seed).split(rest)):
        roles[rest[val]] = fold_role(k)
    return roles.astype(str)


def clip_roles(clips: pd.DataFrame, patients: np.ndarray, roles: np.ndarray) -> pd.DataFrame:
    """Patient roles -> the splits table: clip_id, video_id, patient_id, period, role (one row per clip)."""
    by_patient = pd.Series(roles, index=patients)
    out = clips[["clip_id", "video_id", "patient_id", "period"]].copy()
    out["role"] = out["patient_id"].map(by_patient).astype(str)
    return out.reset_index(drop=True)


def make_split(clips: pd.DataFrame, patterns: tuple[str, ...], n_folds: int, test_fraction: float, seed: int,
               search: Search = Search(), previous: dict[str, str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """clip_table rows -> (splits table, notes): the whole stratified assignment."""
    pm = patient_matrix(clips, patterns)
    roles, notes = assign_roles(pm, n_folds, test_fraction, seed, search, previous)
    return clip_roles(clips, pm.patients, roles), notes


def previous_roles(splits: pd.DataFrame) -> dict[str, str]:
    """A previous splits table -> patient_id -> role; a patient with two roles there is an error."""
    roles = splits[["patient_id", "role"]].astype(str).drop_duplicates()
    twice = roles["patient_id"][roles["patient_id"].duplicated()]
    if len(twice):
        raise ValueError(f"the previous split puts {twice.nunique()} patient(s) in two roles: it is not a valid "
                         "luskit split; set split.reshuffle: true or fix split.previous")
    return dict(zip(roles["patient_id"], roles["role"]))
