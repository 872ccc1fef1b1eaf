"""Match one agency's edition against the reference (MOI), level by level, top-down.

For each reference unit the candidates are the other agency's units of the same level
under the partner of its nearest matched ancestor (its parent's partner first; the
grandparent's when the unit moved). Each candidate pair is weighed (`crosswalk.evidence`).
A pair is accepted automatically only when it is the best for both sides, strong, and no
rival on either side comes close (homonyms go to review). Renamed units are proposed for
review when they are the only unmatched pair under matched parents. Parents proposed for
review are upgraded when most of their children agree. Finally a structural pass finds
splits and merges (one unit's children now under two units, or two units' under one).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from crosswalk.evidence import Evidence, weigh
from crosswalk.partners import ACCEPTED_STATUSES
from crosswalk.units import LEVEL_ORDER, Side, Unit

__all__ = ["AUTO", "MARGIN", "REVIEW", "Decision", "Link", "Matcher"]

AUTO = 0.90  # at least this score to be accepted without a person
REVIEW = 0.72  # at least this score to be proposed to a person
MARGIN = 0.05  # the best must beat its nearest rival (on both sides) by this much
ALIKE = 80  # % similarity that lets the last unmatched pair under matched parents pass
CHILD_LEVELS = {
    "province": ("county",),
    "county": ("district",),
    "district": ("rural", "city"),
    "rural": ("village",),
}
PARENT_LEVEL = {kid: level for level, kids in CHILD_LEVELS.items() for kid in kids}


@dataclass
class Link:
    level: str
    ref: str
    other: str
    confidence: float
    method: str
    status: str
    words: list[str]
    relation: str = "same"
    rivals: list[dict[str, Any]] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": "; ".join(self.words)}
        if self.rivals:
            out["candidates"] = self.rivals
        return out


@dataclass(frozen=True)
class Decision:
    level: str
    ref: str
    other: str
    decision: str  # confirm | reject | link
    note: str | None = None


def _alike(ref: Unit, other: Unit) -> str:
    """Why two names of a renamed unit still belong together, or "" when nothing does."""
    sim = max(fuzz.ratio(ref.key, other.key), fuzz.ratio(ref.loose, other.loose))
    if sim >= ALIKE:
        return f"names {round(sim)}% alike"
    short, long_ = sorted((ref.loose, other.loose), key=len)
    if len(short) >= 4 and (long_.startswith(short) or long_.endswith(short)):
        return f"«{other.name if short == other.loose else ref.name}» is part of the other name"
    return ""


def _accept(link: Link, why: str) -> None:
    """A link proposed for review accepted without a person, for the reason ``why``."""
    link.status, link.confidence = "auto", max(link.confidence, 0.9)
    link.words = [w for w in link.words if not w.startswith("not similar enough")]
    link.words.append(why)


class Matcher:
    """Links between ``ref`` (MOI) and ``other`` (SCI or HF)."""

    def __init__(
        self,
        ref: Side,
        other: Side,
        decisions: list[Decision] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.ref, self.other = ref, other
        self.decisions = defaultdict(list)
        for d in decisions or []:
            self.decisions[d.level].append(d)
        self.progress = progress or (lambda _m: None)
        self.links: list[Link] = []
        self.r2o: dict[str, list[str]] = defaultdict(list)
        self.o2r: dict[str, list[str]] = defaultdict(list)
        self.by_ref: dict[tuple[str, str], list[Link]] = defaultdict(list)
        self.by_other: dict[tuple[str, str], list[Link]] = defaultdict(list)

    # -- the run -------------------------------------------------------------------------
    def run(self) -> list[Link]:
        for level in LEVEL_ORDER:
            self._match_level(level)
            self._apply_decisions(level)
            # districts are judged by their children once, after their rural districts
            parent_level = PARENT_LEVEL.get(level) if level != "city" else None
            if parent_level:
                self._upgrade_by_children(parent_level)
            self.progress(f"{self.other.agency}: {level} matched")
        for level in ("rural", "district", "county"):
            self._structure(level)
        for level in LEVEL_ORDER:
            self._apply_confirmations(level)
        return [lk for lk in self.links]

    # -- bookkeeping ---------------------------------------------------------------------
    def _add(self, link: Link) -> Link:
        self.links.append(link)
        self.by_ref[(link.level, link.ref)].append(link)
        self.by_other[(link.level, link.other)].append(link)
        if link.status != "rejected":
            self.r2o[link.ref].append(link.other)
            self.o2r[link.other].append(link.ref)
        return link

    def _drop(self, link: Link, status: str, why: str) -> None:
        if link.status != "rejected" and status == "rejected":
            self.r2o[link.ref].remove(link.other)
            self.o2r[link.other].remove(link.ref)
        link.status = status
        link.words.append(why)

    # -- candidates ----------------------------------------------------------------------
    def _anchors(self, code: str) -> list[tuple[int, list[str]]]:
        """The unit's matched ancestors, nearest first: (distance, their partners)."""
        unit = self.ref.units[code]
        return [
            (dist, self.r2o[anc])
            for dist, anc in enumerate(reversed(unit.ancestors), 1)
            if self.r2o.get(anc)
        ]

    def _pool(self, level: str, dist: int, partners: list[str]) -> dict[str, int]:
        """The other side's units of ``level`` under ``partners``, with their hops."""
        out: dict[str, int] = {}
        for oa in partners:
            for o in self.other.under.get((oa, level), []):
                ou = self.other.units[o]
                hops = max(dist, len(ou.ancestors) - ou.ancestors.index(oa))
                if hops < out.get(o, 99):
                    out[o] = hops
        return out

    def _weigh_pool(self, code: str, pool: dict[str, int]) -> list[tuple[str, Evidence]]:
        unit = self.ref.units[code]
        codes = list(pool)
        keys = {unit.key, *(f.key for f in unit.former)}
        looses = {k for k in (unit.loose, *(f.loose for f in unit.former)) if k}
        same = [
            o
            for o in codes
            if self.other.units[o].key in keys or self.other.units[o].loose in looses
        ]
        chosen = set(same)
        if len(same) <= 1:  # look further only when names alone do not settle it
            other_keys = [self.other.units[o].key for o in codes]
            for key in (unit.key, *(f.key for f in unit.former)):
                for _key, _score, i in process.extract(
                    key, other_keys, scorer=fuzz.ratio, limit=3, score_cutoff=60
                ):
                    chosen.add(codes[i])
        return [(o, weigh(unit, self.other.units[o], pool[o])) for o in chosen]

    def _candidates(self, code: str, level: str) -> list[tuple[str, Evidence]]:
        """Candidates under the nearest matched ancestor's partner; when none is strong,
        under the next matched ancestor's too (the unit may have moved)."""
        if level == "province":
            return self._weigh_pool(code, {o: 1 for o in self.other.by_level["province"]})
        anchors = self._anchors(code)
        if not anchors:
            if level == "county":
                return self._weigh_pool(code, {o: 3 for o in self.other.by_level["county"]})
            return []
        dist, partners = anchors[0]
        found = self._weigh_pool(code, self._pool(level, dist, partners))
        if len(anchors) > 1 and not any(ev.score >= AUTO for _, ev in found):
            wider = self._pool(level, *anchors[1])
            seen = {o for o, _ in found}
            found += self._weigh_pool(code, {o: h for o, h in wider.items() if o not in seen})
        return found

    # -- one level -----------------------------------------------------------------------
    def _match_level(self, level: str) -> None:
        refs = [r for r in self.ref.by_level.get(level, []) if r not in self.r2o]
        cands: dict[str, list[tuple[str, Evidence]]] = {}
        back: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for r in refs:
            found = sorted(self._candidates(r, level), key=lambda x: -x[1].score)
            if found:
                cands[r] = found
                for o, ev in found:
                    back[o].append((r, ev.score))
        for o in back:
            back[o].sort(key=lambda x: -x[1])
        taken_r: set[str] = set()
        taken_o: set[str] = set(self.o2r)
        for r, found in cands.items():
            o, ev = found[0]
            rival_r = found[1][1].score if len(found) > 1 else 0.0
            rivals_o = back[o]
            rival_o = rivals_o[1][1] if len(rivals_o) > 1 else 0.0
            if (
                ev.score >= AUTO
                and rivals_o[0][0] == r
                and ev.score - rival_r >= MARGIN - 1e-9
                and ev.score - rival_o >= MARGIN - 1e-9
                and o not in taken_o
            ):
                self._add(Link(level, r, o, round(ev.score, 3), ev.method, "auto", ev.words))
                taken_r.add(r)
                taken_o.add(o)
        pending = sorted(
            (
                (ev.score, r, o, ev)
                for r, found in cands.items()
                if r not in taken_r
                for o, ev in found
            ),
            key=lambda x: (-x[0], x[1], x[2]),
        )
        for score, r, o, ev in pending:
            if r in taken_r or o in taken_o or score < REVIEW:
                continue
            rivals: list[dict[str, Any]] = [
                {"code": oo, "name": self.other.units[oo].name, "score": round(e.score, 3)}
                for oo, e in cands[r][:6]
                if oo != o
            ]
            close = [x for x in rivals if x["score"] >= score - MARGIN]
            words = list(ev.words)
            if close:
                words.append(f"{len(close)} other candidates nearly as good")
            elif len(back[o]) > 1 and back[o][1][1] >= score - MARGIN:
                words.append("another unit of the reference list fits it nearly as well")
            elif score < AUTO:
                words.append("not similar enough to accept without a person")
            self._add(
                Link(
                    level,
                    r,
                    o,
                    round(min(score, 0.89), 3),
                    ev.method,
                    "needs_review",
                    words,
                    rivals=rivals,
                )
            )
            taken_r.add(r)
            taken_o.add(o)
        self._eliminate(level)

    def _accepted(self, level: str, code: str, ref_side: bool) -> bool:
        links = self.by_ref[(level, code)] if ref_side else self.by_other[(level, code)]
        return any(lk.status in ACCEPTED_STATUSES for lk in links)

    def _eliminate(self, level: str) -> None:
        """A renamed unit: the only pair left without an accepted link under two matched
        parents. Accepted when the names still share something (80% alike, or one name
        begins or ends with the other: «کرند» → «کرند غرب»); else proposed for review."""
        parent_level = PARENT_LEVEL.get(level)
        if not parent_level:
            return
        for link in [
            lk for lk in self.links if lk.level == parent_level and lk.status in ACCEPTED_STATUSES
        ]:
            rs = [
                c for c in self.ref.children(link.ref, level) if not self._accepted(level, c, True)
            ]
            os_ = [
                c
                for c in self.other.children(link.other, level)
                if not self._accepted(level, c, False)
            ]
            if len(rs) != 1 or len(os_) != 1:
                continue
            r, o = rs[0], os_[0]
            proposed = [lk for lk in self.by_ref[(level, r)] if lk.status == "needs_review"]
            if (proposed and proposed[0].other != o) or any(
                lk.status == "needs_review" and lk.ref != r for lk in self.by_other[(level, o)]
            ):
                continue
            alike = _alike(self.ref.units[r], self.other.units[o])
            if proposed:
                if alike:
                    _accept(proposed[0], f"the only unmatched pair under matched parents; {alike}")
                continue
            ev = weigh(self.ref.units[r], self.other.units[o], 1)
            words = [*ev.words, "the only unmatched pair under matched parents"]
            if alike:
                words[-1] += f"; {alike}"
            self._add(
                Link(
                    level,
                    r,
                    o,
                    0.9 if alike else round(min(ev.score, 0.6), 3),
                    "fuzzy",
                    "auto" if alike else "needs_review",
                    words,
                )
            )

    def _upgrade_by_children(self, level: str) -> None:
        """A parent proposed for review is accepted when most of its children agree."""
        for link in [lk for lk in self.links if lk.level == level and lk.status == "needs_review"]:
            kids = [
                c for lvl in CHILD_LEVELS.get(level, ()) for c in self.ref.children(link.ref, lvl)
            ]
            agree = sum(
                1
                for c in kids
                if any(self.other.units[o].parent == link.other for o in self.r2o.get(c, []))
            )
            if (
                len(kids) >= 3
                and agree >= 0.6 * len(kids)
                and not any(x["score"] >= link.confidence for x in link.rivals)
            ):
                _accept(link, f"{agree} of {len(kids)} children match under it")

    # -- decisions -----------------------------------------------------------------------
    def _apply_decisions(self, level: str) -> None:
        """Rejections and exclusive links ("link": this pair, no other candidate of either
        unit), before the level's structure is judged: they change who has a partner."""
        for d in self.decisions.get(level, []):
            if d.decision == "confirm":
                continue  # after the structure: see _apply_confirmations
            existing = [lk for lk in self.by_ref[(level, d.ref)] if lk.other == d.other]
            note = f"decision: {d.decision}" + (f" ({d.note})" if d.note else "")
            if d.decision == "reject":
                for lk in existing:
                    self._drop(lk, "rejected", note)
                continue
            others = self.by_ref[(level, d.ref)] + self.by_other[(level, d.other)]
            for lk in [
                lk for lk in others if lk not in existing and lk.status in {"auto", "needs_review"}
            ]:
                self._drop(lk, "rejected", "superseded by a decision")
            self._confirm(level, d, existing, note)

    def _apply_confirmations(self, level: str) -> None:
        """ "confirm" decisions, once every link of the run exists (those a split or a merge
        made included): the pair is confirmed as it was found, with its relation, and its
        siblings stay — as :func:`crosswalk.review.decide` does on the newest run. A pair
        the run did not find is added as a manual link."""
        for d in self.decisions.get(level, []):
            if d.decision != "confirm":
                continue
            existing = [lk for lk in self.by_ref[(level, d.ref)] if lk.other == d.other]
            note = "decision: confirm" + (f" ({d.note})" if d.note else "")
            self._confirm(level, d, existing, note)

    def _confirm(self, level: str, d: Decision, existing: list[Link], note: str) -> None:
        """The decided pair confirmed: its links as they are (a rejected one partnered
        again), or a manual link when the run found none."""
        for lk in existing:
            if lk.status == "rejected":
                self.r2o[lk.ref].append(lk.other)
                self.o2r[lk.other].append(lk.ref)
            lk.status = "confirmed"
            lk.words.append(note)
        if not existing and d.ref in self.ref.units and d.other in self.other.units:
            self._add(Link(level, d.ref, d.other, 1.0, "manual", "confirmed", [note]))

    # -- splits and merges ---------------------------------------------------------------
    def _structure(self, level: str) -> None:
        kid_levels = CHILD_LEVELS.get(level, ())
        for o in self.other.by_level.get(level, []):
            if o in self.o2r:
                continue
            kids = [c for lvl in kid_levels for c in self.other.children(o, lvl)]
            parents = Counter(self.ref.units[r].parent for c in kids for r in self.o2r.get(c, []))
            if parents:
                r, n = parents.most_common(1)[0]
                if r and (n >= 2 or n == len(kids)) and n >= 0.5 * len(kids):
                    self._structural(level, r, o, n, len(kids), "merge")
        for r in self.ref.by_level.get(level, []):
            if r in self.r2o:
                continue
            kids = [c for lvl in kid_levels for c in self.ref.children(r, lvl)]
            parents = Counter(self.other.units[o].parent for c in kids for o in self.r2o.get(c, []))
            if parents:
                parent, n = parents.most_common(1)[0]
                if parent and (n >= 2 or n == len(kids)) and n >= 0.5 * len(kids):
                    self._structural(level, r, parent, n, len(kids), "split")

    def _structural(self, level: str, r: str, o: str, n: int, of: int, kind: str) -> None:
        """Link r and o because ``n`` of ``of`` children agree: a split or a merge when the
        partner already has a partner, else a renamed unit."""
        sure = n >= 3 and n >= 0.8 * of
        partnered = r in self.r2o if kind == "merge" else o in self.o2r
        relation = kind if partnered else "same"
        ev = weigh(self.ref.units[r], self.other.units[o], 1)
        if partnered:
            words = [
                f"{n} of {of} children "
                + (
                    "of it now under one unit with another partner"
                    if kind == "merge"
                    else "came from one unit that also lives on"
                )
            ]
        else:
            words = [*ev.words, f"{n} of {of} children agree"]
        self._add(
            Link(
                level,
                r,
                o,
                0.9 if sure else 0.7,
                "name" if partnered else ev.method,
                "auto" if sure else "needs_review",
                words,
                relation=relation,
            )
        )
        if partnered:
            siblings = self.by_ref[(level, r)] if kind == "merge" else self.by_other[(level, o)]
            for lk in siblings:
                lk.relation = kind
